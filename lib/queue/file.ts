// Queue files on disk: creating one under a fresh queue id, committing it
// (fsync, then the owner execute bit that marks it complete), reading one
// back with the checks every reader makes, and moving an unreadable one to
// the corrupt queue.

import { longQueueId, shortQueueId } from "./id.ts";
import {
  hashedSubdir,
  queueFileModes,
  queueFilePath,
  type QueueLayout,
  queuePath,
} from "./layout.ts";
import { decodeRecordAt, RecordError, RecordType } from "./record.ts";
import { warn } from "../log.ts";

/** A queue file being written; nothing reads it until commit() sets the execute bit. */
export interface NewQueueFile {
  id: string;
  queueName: string;
  path: string;
  file: Deno.FsFile;
  /** The mode commit() gives the file. */
  completeMode: number;
}

/** A queue file could not be created (every attempt collided or the folder is unusable). */
export class QueueFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueFileError";
  }
}

/** The wall clock in seconds and microseconds, finer than Date.now(). */
export function clockMicros(): { seconds: number; usec: number } {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(micros / 1e6), usec: micros % 1e6 };
}

const maxAttempts = 100;

/**
 * Creates a new queue file in `queueName` the way Postfix does: open a
 * temporary name (`usec.pid`) exclusively, take its inode, derive the queue
 * id from time and inode, and link it under the id's (hashed) name; retry
 * with a fresh time on a collision, create missing hash folders on ENOENT.
 */
export function createQueueFile(
  layout: QueueLayout,
  queueName: string,
  options: { longIds?: boolean } = {},
): NewQueueFile {
  const modes = queueFileModes(queueName);
  const dir = queuePath(layout, queueName);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const { seconds, usec } = clockMicros();
    const temp = `${dir}/${usec}.${Deno.pid}`;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(temp, { createNew: true, read: true, write: true, mode: modes.writing });
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) continue;
      throw new QueueFileError(`create file ${temp}: ${describe(err)}`);
    }
    const info = file.statSync();
    // umask may have taken the group bits a maildrop file needs; the stat
    // taken for the inode tells, so the usual case costs no chmod.
    if (((info.mode ?? 0) & 0o7777) !== modes.writing) Deno.chmodSync(temp, modes.writing);
    const inode = info.ino ?? 0;
    const id = options.longIds ? longQueueId(seconds, usec, inode) : shortQueueId(usec, inode);
    const path = queueFilePath(layout, queueName, id);
    if (linkUnderId(layout, queueName, id, temp, path)) {
      Deno.removeSync(temp);
      return { id, queueName, path, file, completeMode: modes.complete };
    }
    file.close();
    Deno.removeSync(temp);
  }
  throw new QueueFileError(`${dir}: cannot create a queue file after ${maxAttempts} attempts`);
}

/** Links `temp` to `path`; false when the name is taken. Creates hash folders as needed. */
function linkUnderId(
  layout: QueueLayout,
  queueName: string,
  id: string,
  temp: string,
  path: string,
): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      Deno.linkSync(temp, path);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) return false;
      const sub = hashedSubdir(layout, queueName, id);
      if (!(err instanceof Deno.errors.NotFound) || !sub || tries > 0) {
        throw new QueueFileError(`link ${temp} ${path}: ${describe(err)}`);
      }
      Deno.mkdirSync(`${queuePath(layout, queueName)}/${sub}`, { recursive: true, mode: 0o700 });
    }
  }
  return false;
}

/** Writes all of `data` to the file. */
export function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let at = 0;
  while (at < data.length) at += file.writeSync(data.subarray(at));
}

/**
 * Marks the file complete (owner execute bit), makes it durable, then closes
 * it; the caller acknowledges only after this returns. One fsync covers the
 * data and the mode change, in the order Postfix's mail_stream_finish uses
 * (fchmod, then fsync): before the fsync returns nothing is acknowledged,
 * and after it both the content and the execute bit are on disk.
 */
export function commitQueueFile(qf: NewQueueFile): void {
  Deno.chmodSync(qf.path, qf.completeMode);
  qf.file.syncSync();
  qf.file.close();
}

/** Gives up on a file being written: closes and removes it, so nothing is half-queued. */
export function abandonQueueFile(qf: NewQueueFile): void {
  try {
    qf.file.close();
  } catch {
    // Already closed.
  }
  try {
    Deno.removeSync(qf.path);
  } catch {
    // Already gone.
  }
}

/** Why a queue file was refused. */
export type RefusalReason = "incomplete" | "corrupt" | "missing" | "not-a-file";

/** A queue file a reader will not use. */
export class QueueFileRefused extends Error {
  constructor(message: string, readonly reason: RefusalReason) {
    super(message);
    this.name = "QueueFileRefused";
  }
}

/**
 * Reads a complete queue file: it must be a regular file with the owner
 * execute bit set and its records must parse up to an E record.
 */
export function readQueueFile(path: string): Uint8Array {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (err) {
    throw new QueueFileRefused(`open ${path}: ${describe(err)}`, "missing");
  }
  if (!info.isFile) throw new QueueFileRefused(`${path}: not a regular file`, "not-a-file");
  if (((info.mode ?? 0) & 0o100) === 0) {
    throw new QueueFileRefused(`${path}: queue file is incomplete`, "incomplete");
  }
  const data = Deno.readFileSync(path);
  checkComplete(data, path);
  return data;
}

/** Throws QueueFileRefused unless the records parse and an E record ends the data. */
export function checkComplete(data: Uint8Array, name: string): void {
  let at = 0;
  let last = "";
  try {
    for (;;) {
      const got = decodeRecordAt(data, at);
      if (!got) break;
      last = got.record.type;
      at = got.next;
      if (last === RecordType.END) break;
    }
  } catch (err) {
    if (err instanceof RecordError) {
      throw new QueueFileRefused(`${name}: ${err.message}`, "corrupt");
    }
    throw err;
  }
  if (last !== RecordType.END) {
    throw new QueueFileRefused(`${name}: no end record`, "corrupt");
  }
}

/**
 * Moves a queue file that cannot be parsed to the corrupt queue, with a
 * warning, as Postfix's daemons do; returns the new path.
 */
export function saveCorrupt(layout: QueueLayout, queueName: string, id: string): string {
  const from = queueFilePath(layout, queueName, id);
  const to = queueFilePath(layout, "corrupt", id);
  warn(`saving corrupt file "${id}" from queue "${queueName}"`);
  try {
    Deno.renameSync(from, to);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    Deno.renameSync(from, to);
  }
  return to;
}

/** Postfix's wording for a system error. */
export function describe(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.AlreadyExists) return "File exists";
  if (err instanceof Deno.errors.NotADirectory) return "Not a directory";
  return err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : String(err);
}
