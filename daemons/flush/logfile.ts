// The per-destination "fast flush" logfiles of flush(8): one append-only
// file of queue ids per eligible site under the queue's flush/ folder, named
// after the site (lower case, every character other than a letter or digit
// as "_": example.com → flush/example_com), hashed into subfolders when
// hash_queue_names lists flush. Appends and the read-and-truncate of a send
// hold an exclusive lock, so a deferral racing a flush loses no queue id.

import { domainToASCII } from "node:url";
import type { QueueLayout } from "../../lib/queue/layout.ts";
import { describe } from "../../lib/queue/file.ts";
import { warn } from "../../lib/log.ts";

/** Postfix's VALID_HOSTNAME_LEN: the longest name a logfile or queue id may have. */
const maxNameLength = 255;

/**
 * Postfix's mail_queue_id_ok: letters, digits and "_" only, 1 to 255
 * characters. Queue ids and logfile names both pass through it, so
 * neither can name a path outside the queue.
 */
export function queueNameOk(name: string): boolean {
  return name.length > 0 && name.length <= maxNameLength && /^[A-Za-z0-9_]+$/.test(name);
}

/**
 * The logfile name of `site`: an internationalized name in its ASCII form,
 * then lower case with other characters as "_". Undefined when the name
 * cannot be converted.
 */
export function siteLogName(site: string): string | undefined {
  let ascii = site;
  // deno-lint-ignore no-control-regex
  if (/[^\x00-\x7f]/.test(site)) {
    ascii = domainToASCII(site);
    if (!ascii) return undefined;
  }
  return ascii.toLowerCase().replace(/[^a-z0-9]/g, "_");
}

/** The folder holding logfile `name`: flush/, or flush/a/b/ when flush is hashed. */
export function logDirectory(layout: QueueLayout, name: string): string {
  const base = `${layout.queueDirectory}/flush`;
  if (!layout.hashQueueNames.includes("flush") || layout.hashQueueDepth <= 0) return base;
  const levels: string[] = [];
  for (let i = 0; i < layout.hashQueueDepth; i++) levels.push(name[i] ?? "_");
  return `${base}/${levels.join("/")}`;
}

/** The full path of logfile `name`. */
export function logPath(layout: QueueLayout, name: string): string {
  return `${logDirectory(layout, name)}/${name}`;
}

/** Appends `queueId` to logfile `name`, creating it (and its hash folder) when new. */
export function appendToLog(layout: QueueLayout, name: string, queueId: string): void {
  const path = logPath(layout, name);
  let file: Deno.FsFile;
  const open = () => Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  try {
    file = open();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(logDirectory(layout, name), { recursive: true, mode: 0o700 });
    file = open();
  }
  try {
    file.lockSync(true);
    const line = new TextEncoder().encode(queueId + "\n");
    let off = 0;
    while (off < line.length) off += file.writeSync(line.subarray(off));
  } finally {
    file.close();
  }
}

/**
 * Reads logfile `name` and truncates it, under the lock: the queue ids it
 * listed, valid and without duplicates, in order. Undefined when there is no
 * such logfile (nothing was ever deferred to the site). The logfile's access
 * time becomes now: it was read, which refresh goes by.
 */
export function takeLog(layout: QueueLayout, name: string): string[] | undefined {
  const path = logPath(layout, name);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`open fast flush logfile ${name}: ${describe(err)}`);
  }
  let text: string;
  try {
    file.lockSync(true);
    const size = file.statSync().size;
    const data = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = file.readSync(data.subarray(off));
      if (n === null || n === 0) break;
      off += n;
    }
    text = new TextDecoder().decode(data.subarray(0, off));
    file.truncateSync(0);
    const now = new Date();
    file.utimeSync(now, now);
  } finally {
    file.close();
  }
  const ids: string[] = [];
  const seen = new Set<string>();
  for (const id of text.split("\n")) {
    if (!id) continue;
    if (!queueNameOk(id)) {
      warn(`bad queue id "${id.slice(0, 30)}..." in fast flush logfile ${name}`);
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
  }
  return ids;
}

/** One logfile found by a refresh scan. */
export interface LogEntry {
  name: string;
  path: string;
}

/** Every logfile under flush/ (hashed subfolders included); names that are not valid are skipped. */
export function listLogs(layout: QueueLayout): LogEntry[] {
  const out: LogEntry[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory && depth < 16 && e.name.length === 1) walk(path, depth + 1);
      else if (e.isFile && queueNameOk(e.name)) out.push({ name: e.name, path });
    }
  };
  walk(`${layout.queueDirectory}/flush`, 0);
  return out;
}
