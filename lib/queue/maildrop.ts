// Local submission into the maildrop queue: the one code path postdrop and
// sendmail share. The writer takes the record stream sendmail produces
// (envelope M F S R V A i n, content X L N, extracted E A R), checks each
// record against what a local user may submit, prefixes the arrival time,
// and commits the file (fsync, then the execute bit) only when the E record
// arrives. Anything else removes the file: nothing is half-queued.

import {
  abandonQueueFile,
  clockMicros,
  commitQueueFile,
  createQueueFile,
  describe,
  type NewQueueFile,
  QueueFileRefused,
  writeAllSync,
} from "./file.ts";
import type { QueueLayout } from "./layout.ts";
import {
  decodeRecords,
  encodeLength,
  encodeRecord,
  postdropAllowed,
  type QueueRecord,
  RecordError,
  recordText,
  RecordType,
} from "./record.ts";

/** Attributes a local submitter may set; others are dropped with a warning, as postdrop does. */
export const submitterAttributes = new Set([
  "rewrite_context",
  "envelope_id",
  "ret_flags",
  "notify_flags",
  "encoding",
  "dsn_orig_rcpt",
  "smtputf8",
  "trace_flags",
]);

/** A record stream a submitter may not send (postdrop's "unexpected record type"). */
export class SubmissionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubmissionError";
  }
}

/** The queue file outgrew message_size_limit ("File too large"). */
export class MessageTooLarge extends Error {
  constructor() {
    super("File too large");
    this.name = "MessageTooLarge";
  }
}

type Segment = "envelope" | "content" | "extracted" | "done";

/** Options for a maildrop submission. */
export interface MaildropOptions {
  /** enable_long_queue_ids. */
  longIds?: boolean;
  /** message_size_limit in bytes (0: none); the whole queue file counts, as in Postfix. */
  sizeLimit?: number;
  /** Called for a dropped attribute record (postdrop logs it). */
  onIgnored?: (text: string) => void;
}

const flushAt = 1 << 16;

/** Writes one submission into maildrop; see the module comment. */
export class MaildropWriter {
  readonly id: string;
  readonly path: string;
  private readonly qf: NewQueueFile;
  private segment: Segment = "envelope";
  private chunks: Uint8Array[] = [];
  private pending = 0;
  private size = 0;
  private closed = false;

  constructor(layout: QueueLayout, private readonly options: MaildropOptions = {}) {
    this.qf = createQueueFile(layout, "maildrop", { longIds: options.longIds });
    this.id = this.qf.id;
    this.path = this.qf.path;
    const { seconds, usec } = clockMicros();
    this.push(encodeRecord(RecordType.TIME, `${seconds} ${usec}`));
  }

  /** Bytes of the queue file so far. */
  get bytes(): number {
    return this.size;
  }

  /** Adds one record; throws SubmissionError for a record a submitter may not write. */
  add(type: string, data: Uint8Array | string = ""): void {
    if (this.closed) throw new SubmissionError("record after end of submission");
    const allowed = this.segment === "envelope"
      ? postdropAllowed.envelope
      : this.segment === "content"
      ? postdropAllowed.content
      : postdropAllowed.extracted;
    if (!allowed.includes(type) || this.segment === "done") {
      throw new SubmissionError(`unexpected record type: ${type.charCodeAt(0)}`);
    }
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (type === RecordType.ATTR && !this.attributeAllowed(bytes)) return;
    if (type === RecordType.FROM && bytes.includes(0)) {
      throw new SubmissionError("NUL in FROM record");
    }
    if (type === RecordType.MESG) this.segment = "content";
    else if (type === RecordType.XTRA) this.segment = "extracted";
    else if (type === RecordType.END) this.segment = "done";
    this.pushRecord(type, bytes);
  }

  /** Adds a text line record (N, or L for a fragment) without re-checking the segment. */
  addText(type: "N" | "L", data: Uint8Array): void {
    if (this.segment !== "content") throw new SubmissionError("text outside message content");
    this.pushRecord(type, data);
  }

  /** Whether the E record has been written. */
  get ended(): boolean {
    return this.segment === "done";
  }

  /** Flushes, fsyncs and marks the file complete; returns the queue id. */
  commit(): string {
    if (this.segment !== "done") {
      this.abandon();
      throw new SubmissionError("submission ended without an end record");
    }
    this.flush();
    commitQueueFile(this.qf);
    this.closed = true;
    return this.id;
  }

  /** Removes the unfinished file. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    abandonQueueFile(this.qf);
  }

  private attributeAllowed(bytes: Uint8Array): boolean {
    const text = new TextDecoder().decode(bytes);
    const eq = text.indexOf("=");
    if (eq <= 0) {
      this.options.onIgnored?.(`ignoring malformed record: ${text.slice(0, 200)}`);
      return false;
    }
    const name = text.slice(0, eq);
    if (submitterAttributes.has(name)) return true;
    this.options.onIgnored?.(
      `ignoring attribute record: ${name.slice(0, 200)}=${text.slice(eq + 1, eq + 201)}`,
    );
    return false;
  }

  private pushRecord(type: string, data: Uint8Array): void {
    const head = encodeLength(data.length);
    const rec = new Uint8Array(1 + head.length + data.length);
    rec[0] = type.charCodeAt(0);
    rec.set(head, 1);
    rec.set(data, 1 + head.length);
    this.push(rec);
  }

  private push(bytes: Uint8Array): void {
    this.size += bytes.length;
    const limit = this.options.sizeLimit ?? 0;
    if (limit > 0 && this.size > limit) {
      this.abandon();
      throw new MessageTooLarge();
    }
    this.chunks.push(bytes);
    this.pending += bytes.length;
    if (this.pending >= flushAt) this.flush();
  }

  private flush(): void {
    if (this.pending === 0) return;
    const buf = new Uint8Array(this.pending);
    let at = 0;
    for (const chunk of this.chunks) {
      buf.set(chunk, at);
      at += chunk.length;
    }
    this.chunks = [];
    this.pending = 0;
    writeAllSync(this.qf.file, buf);
  }
}

/** A maildrop file as pickup reads it: the submitter's uid and the records after the arrival time. */
export interface Submission {
  uid: number;
  arrival: string;
  records: QueueRecord[];
}

/**
 * Reads a maildrop file the way pickup must (docs/SECURITY.md): a regular
 * file, not a symbolic link, with one link and the owner execute bit; the
 * owner is the submitter; the records must follow the rules postdrop
 * applies. Throws QueueFileRefused ("incomplete" when the file is still
 * being written, "corrupt" when it breaks the rules: move it to corrupt/).
 */
export function readSubmission(path: string, sizeLimit = 0): Submission {
  const info = lstatOrRefuse(path);
  if (!info.isFile || info.nlink !== 1) {
    throw new QueueFileRefused(`${path}: not a regular file with one link`, "not-a-file");
  }
  if (((info.mode ?? 0) & 0o100) === 0) {
    throw new QueueFileRefused(`${path}: queue file is incomplete`, "incomplete");
  }
  if (sizeLimit > 0 && info.size > sizeLimit) {
    throw new QueueFileRefused(`${path}: File too large`, "corrupt");
  }
  const data = Deno.readFileSync(path);
  let records: QueueRecord[];
  try {
    records = decodeRecords(data);
  } catch (err) {
    if (err instanceof RecordError) {
      throw new QueueFileRefused(`${path}: ${err.message}`, "corrupt");
    }
    throw err;
  }
  const [first, ...rest] = records;
  if (first?.type !== RecordType.TIME) {
    throw new QueueFileRefused(`${path}: no arrival time record`, "corrupt");
  }
  checkSubmissionRecords(rest, path);
  return { uid: info.uid ?? -1, arrival: recordText(first), records: rest };
}

function lstatOrRefuse(path: string): Deno.FileInfo {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    throw new QueueFileRefused(`open ${path}: ${describe(err)}`, "missing");
  }
}

/** The segment rules and attribute list of postdrop, applied to records read back. */
function checkSubmissionRecords(records: QueueRecord[], path: string): void {
  let segment: Segment = "envelope";
  for (const record of records) {
    const allowed = segment === "envelope"
      ? postdropAllowed.envelope
      : segment === "content"
      ? postdropAllowed.content
      : segment === "extracted"
      ? postdropAllowed.extracted
      : "";
    if (!allowed.includes(record.type)) {
      throw new QueueFileRefused(
        `${path}: unexpected record type: ${record.type.charCodeAt(0)}`,
        "corrupt",
      );
    }
    if (record.type === RecordType.ATTR) {
      const text = recordText(record);
      if (!submitterAttributes.has(text.slice(0, Math.max(text.indexOf("="), 0)))) {
        throw new QueueFileRefused(
          `${path}: attribute not allowed: ${text.slice(0, 200)}`,
          "corrupt",
        );
      }
    }
    if (record.type === RecordType.MESG) segment = "content";
    else if (record.type === RecordType.XTRA) segment = "extracted";
    else if (record.type === RecordType.END) segment = "done";
  }
  if (segment !== "done") throw new QueueFileRefused(`${path}: no end record`, "corrupt");
}
