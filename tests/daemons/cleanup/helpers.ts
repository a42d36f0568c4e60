// Shared set-up for the cleanup tests: a message as pickup sends it, run
// through the core, and the resulting queue file decoded with lib/queue.

import { configFromText } from "../../../lib/config/mod.ts";
import { decodeRecords, RecordType } from "../../../lib/queue/record.ts";
import {
  type CleanupResult,
  type InputRecord,
  processMessage,
} from "../../../daemons/cleanup/core.ts";
import { defaultFlags, settingsFrom } from "../../../daemons/cleanup/settings.ts";
import type { CleanupTables } from "../../../daemons/cleanup/tables.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One input record from a type letter and text. */
export function rec(type: string, data: string | Uint8Array = ""): InputRecord {
  return { type, data: typeof data === "string" ? enc.encode(data) : data };
}

/** What a test message is made of. */
export interface TestMessage {
  sender?: string;
  fullname?: string;
  recipients?: string[];
  /** Recipients after the content (sendmail -t). */
  extracted?: string[];
  /** The message text, lines separated by "\n". */
  text: string;
  /** Extra envelope records before the sender. */
  envelope?: InputRecord[];
  rewriteContext?: string;
}

/** The records pickup would send for a message. */
export function messageRecords(m: TestMessage): InputRecord[] {
  const out: InputRecord[] = [rec("T", "1795533859 386243")];
  out.push(rec("A", `rewrite_context=${m.rewriteContext ?? "local"}`));
  out.push(...(m.envelope ?? []));
  out.push(rec("F", m.fullname ?? ""));
  out.push(rec("S", m.sender ?? "alice@example.com"));
  for (const r of m.recipients ?? ["bob@example.com"]) out.push(rec("R", r));
  out.push(rec("M"));
  for (const line of m.text.split("\n")) out.push(rec("N", line));
  out.push(rec("X"));
  for (const r of m.extracted ?? []) out.push(rec("R", r));
  out.push(rec("E"));
  return out;
}

/** A run's result with the file decoded and the log captured. */
export interface Run extends CleanupResult {
  records: { type: string; text: string }[];
  log: string[];
  /** The content lines (N records joined with their L fragments). */
  lines: string[];
  /** The R records. */
  rcpts: string[];
}

/** Runs the core on a message with main.cf text and tables. */
export async function run(
  input: TestMessage | InputRecord[],
  mainCf = "",
  tables: CleanupTables = {},
  flags = defaultFlags,
): Promise<Run> {
  const config = configFromText(
    "/nonexistent",
    "myhostname = mail.example.com\nmydomain = example.com\nmyorigin = $mydomain\n" + mainCf,
  );
  const log: string[] = [];
  const result = await processMessage(Array.isArray(input) ? input : messageRecords(input), {
    queueId: "ABC123",
    flags,
    settings: settingsFrom(config),
    tables,
    now: new Date(Date.UTC(2026, 10, 24, 15, 24, 52)),
    log: { info: (t) => log.push(t), warn: (t) => log.push(`warning: ${t}`) },
  });
  const records = result.file
    ? decodeRecords(result.file).map((r) => ({ type: r.type, text: dec.decode(r.data) }))
    : [];
  const lines: string[] = [];
  let inContent = false;
  let partial = "";
  for (const r of records) {
    if (r.type === RecordType.MESG) inContent = true;
    else if (r.type === RecordType.XTRA) inContent = false;
    else if (inContent && r.type === RecordType.CONT) partial += r.text;
    else if (inContent && r.type === RecordType.NORM) {
      lines.push(partial + r.text);
      partial = "";
    }
  }
  const rcpts = records.filter((r) => r.type === RecordType.RCPT).map((r) => r.text);
  return { ...result, records, log, lines, rcpts };
}

/** A table from a plain object (exact keys), as an address map or check table. */
export function table(
  entries: Record<string, string>,
): (key: string) => Promise<string | undefined> {
  return (key) => Promise.resolve(entries[key]);
}

/** A check table from [regexp, action] pairs, first match wins. */
export function checks(rules: [RegExp, string][]): (line: string) => Promise<string | undefined> {
  return (line) => Promise.resolve(rules.find(([re]) => re.test(line))?.[1]);
}
