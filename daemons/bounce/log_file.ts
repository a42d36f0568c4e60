// The per-message logs of the bounce, defer and trace services
// (queue_directory/bounce, defer, trace): one entry per recipient, as
// `name=value` lines ended by an empty line (Postfix's plain attribute
// format), appended with one write so concurrent appenders never interleave.

import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import type { ReportRecipient } from "../../lib/dsn/report.ts";

/** One logged recipient. */
export interface LogEntry extends ReportRecipient {
  offset: number;
  notify: number;
}

/** The attribute order of an entry (recipient, then DSN status). */
const fields: [string, keyof LogEntry][] = [
  ["orig_rcpt", "origRcpt"],
  ["recipient", "address"],
  ["offset", "offset"],
  ["dsn_orig_rcpt", "dsnOrcpt"],
  ["notify_flags", "notify"],
  ["status", "status"],
  ["diag_type", "diagType"],
  ["diag_text", "diagText"],
  ["mta_type", "mtaType"],
  ["mta_name", "mtaName"],
  ["action", "action"],
  ["reason", "reason"],
];

/** The path of a message's log. */
export function logPath(layout: QueueLayout, log: string, queueId: string): string {
  return queueFilePath(layout, log, queueId);
}

/** One entry's text; newlines in values become spaces (one value per line). */
export function formatEntry(entry: LogEntry): string {
  let text = "";
  for (const [name, key] of fields) {
    text += `${name}=${String(entry[key] ?? "").replace(/[\r\n]+/g, " ")}\n`;
  }
  return text + "\n";
}

/** Appends one entry, creating the log (and its hashed folder) as needed. */
export function appendEntry(path: string, entry: LogEntry): void {
  const data = new TextEncoder().encode(formatEntry(entry));
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  }
  try {
    let at = 0;
    while (at < data.length) at += file.writeSync(data.subarray(at));
    file.syncDataSync();
  } finally {
    file.close();
  }
}

/** Parses a log's entries; unknown attributes are ignored, entries without a recipient dropped. */
export function parseLog(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const block of text.split(/\n\n+/)) {
    const e: LogEntry = {
      origRcpt: "",
      address: "",
      offset: 0,
      dsnOrcpt: "",
      notify: 0,
      status: "",
      diagType: "",
      diagText: "",
      mtaType: "",
      mtaName: "",
      action: "",
      reason: "",
    };
    let seen = false;
    for (const line of block.split("\n")) {
      const eq = line.indexOf("=");
      if (eq <= 0) continue;
      const name = line.slice(0, eq);
      const value = line.slice(eq + 1);
      const field = fields.find(([n]) => n === name);
      if (!field) continue;
      const key = field[1];
      if (key === "offset" || key === "notify") e[key] = Number(value) || 0;
      else (e as unknown as Record<string, string>)[key] = value;
      if (key === "address") seen = true;
    }
    if (seen) out.push(e);
  }
  return out;
}

/** Reads a log; null when there is none. */
export function readLog(path: string): LogEntry[] | null {
  try {
    return parseLog(Deno.readTextFileSync(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}
