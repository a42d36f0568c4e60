// Postfix's queue-file record format: one type byte, the data length in 7-bit
// groups (least significant first, high bit meaning "more follows"), then the
// data, which may hold any byte including NUL. Every program that reads or
// writes a queue file (sendmail, postdrop, pickup, cleanup, qmgr, postcat,
// postsuper) goes through this module.

/** Record types, by Postfix's letters (record(5) has no man page; see rec_type.h's names). */
export const RecordType = {
  /** C: six fixed-width numbers (sizes, offsets, counts); always first in a committed file. */
  SIZE: "C",
  /** T: arrival time, `seconds microseconds`. */
  TIME: "T",
  /** c: queue file creation time (older files; newer ones use the create_time attribute). */
  CTIME: "c",
  /** F: sender full name. */
  FULL: "F",
  /** I: content inspector. */
  INSPECT: "I",
  /** L: content filter in the envelope; an unterminated text fragment in the content. */
  FILTER: "L",
  /** S: envelope sender. */
  FROM: "S",
  /** D: a recipient already delivered. */
  DONE: "D",
  /** R: an envelope recipient. */
  RCPT: "R",
  /** O: the original recipient of the R record that follows. */
  ORCP: "O",
  /** /: a cancelled recipient. */
  DRCP: "/",
  /** W: delay-warning time. */
  WARN: "W",
  /** A: a named attribute, `name=value`. */
  ATTR: "A",
  /** K: a killed (expired) record. */
  KILL: "K",
  /** >: redirect target. */
  RDR: ">",
  /** f: flags. */
  FLGS: "f",
  /** d: delay. */
  DELAY: "d",
  /** M: start of the message content. */
  MESG: "M",
  /** N: a text line (the newline is implied). */
  NORM: "N",
  /** L in content: a text fragment continued by the next record. */
  CONT: "L",
  /** w: padding, skipped by readers. */
  PTR_PAD: "w",
  /** X: end of content, start of extracted information. */
  XTRA: "X",
  /** r: return-receipt address. */
  RRTO: "r",
  /** e: errors-to address. */
  ERTO: "e",
  /** P: priority. */
  PRIO: "P",
  /** p: pointer to the next record's offset. */
  PTR: "p",
  /** V: VERP delimiters. */
  VERP: "V",
  /** <: DSN RET. */
  DSN_RET: "<",
  /** i: DSN ENVID. */
  DSN_ENVID: "i",
  /** o: DSN ORCPT. */
  DSN_ORCPT: "o",
  /** n: DSN NOTIFY. */
  DSN_NOTIFY: "n",
  /** m: milter count. */
  MILT_COUNT: "m",
  /** E: end of the file. */
  END: "E",
} as const;

/** The envelope records (before M) Postfix allows. */
export const envelopeTypes = "CTcFILSDRO/WVA>K<ion";
/** The content records (between M and X). */
export const contentTypes = "NLw";
/** The extracted records (after X), E last. */
export const extractedTypes = "EDRO/PreAFIL>Kon";

/** What postdrop accepts from sendmail, per segment (POSTFIX-NOTES: M F S R V A i n | X L N | E A R). */
export const postdropAllowed = {
  envelope: "MFSRVAin",
  content: "XLN",
  extracted: "EAR",
} as const;

/** postcat's names for the record types, in the envelope and extracted segments. */
const names: Record<string, string> = {
  "/": "canceled_recipient",
  "<": "dsn_return_flags",
  ">": "redirect_to",
  C: "message_size",
  D: "done_recipient",
  F: "sender_fullname",
  I: "content_inspector",
  K: "killed_record",
  L: "content_filter",
  O: "original_recipient",
  P: "priority",
  R: "recipient",
  S: "sender",
  T: "message_arrival_time",
  V: "verp_delimiters",
  W: "warning_message_time",
  c: "queue_file_create_time",
  e: "errors_to",
  f: "flags",
  i: "dsn_envelope_id",
  n: "dsn_notify_flags",
  o: "dsn_original_recipient",
  p: "pointer_record",
  r: "return_receipt",
  w: "padding",
  N: "regular_text",
  A: "named_attribute",
  M: "message_content",
  X: "extracted_info",
  E: "message_end",
};

/** The name postcat prints for a record type; content L is `unterminated_text`. */
export function recordTypeName(type: string, inContent = false): string {
  if (inContent && type === "L") return "unterminated_text";
  return names[type] ?? "unknown_record_type";
}

/** One record: its type letter, its data, and where it starts in the file. */
export interface QueueRecord {
  type: string;
  data: Uint8Array;
  offset: number;
}

/** A queue file that cannot be parsed; the message says where and why. */
export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecordError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes of one record; `data` is a string (UTF-8) or raw bytes. */
export function encodeRecord(type: string, data: string | Uint8Array = ""): Uint8Array {
  const body = typeof data === "string" ? encodeText(data) : data;
  const size = lengthSize(body.length);
  const out = new Uint8Array(1 + size + body.length);
  out[0] = type.charCodeAt(0);
  putLength(out, 1, body.length);
  out.set(body, 1 + size);
  return out;
}

/** UTF-8 bytes of `text`; plain ASCII, the usual case, without the encoder. */
function encodeText(text: string): Uint8Array {
  const n = text.length;
  if (n > 256) return encoder.encode(text);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(text);
    out[i] = c;
  }
  return out;
}

/** How many bytes the length field of `length` takes. */
function lengthSize(length: number): number {
  let size = 1;
  for (let rest = Math.floor(length / 128); rest > 0; rest = Math.floor(rest / 128)) size++;
  return size;
}

/** Writes the length field of `length` at `at` in `out`; returns the offset after it. */
function putLength(out: Uint8Array, at: number, length: number): number {
  let rest = length;
  do {
    let group = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest > 0) group |= 0x80;
    out[at++] = group;
  } while (rest > 0);
  return at;
}

/** The length field: 7-bit groups, least significant first, high bit = more follows. */
export function encodeLength(length: number): Uint8Array {
  const out = new Uint8Array(lengthSize(length));
  putLength(out, 0, length);
  return out;
}

/** The data of a record as text (UTF-8, invalid bytes replaced). */
export function recordText(record: { data: Uint8Array }): string {
  return decoder.decode(record.data);
}

/** The largest record Posthorn reads: far above any line or attribute Postfix writes. */
export const maxRecordLength = 1 << 30;

/**
 * Decodes the record at `offset` in `buf`; returns it and the next offset, or
 * null at the end of the buffer. Throws RecordError on a truncated record.
 */
export function decodeRecordAt(
  buf: Uint8Array,
  offset: number,
): { record: QueueRecord; next: number } | null {
  if (offset >= buf.length) return null;
  const type = String.fromCharCode(buf[offset]);
  let pos = offset + 1;
  let length = 0;
  let shift = 1;
  for (let i = 0;; i++) {
    if (pos >= buf.length) {
      throw new RecordError(`unexpected EOF in record length, record type ${buf[offset]}`);
    }
    const byte = buf[pos++];
    length += (byte & 0x7f) * shift;
    shift *= 128;
    if ((byte & 0x80) === 0) break;
    if (i >= 4) throw new RecordError(`bad record length, record type ${buf[offset]}`);
  }
  if (length > maxRecordLength) {
    throw new RecordError(`illegal length ${length}, record type ${buf[offset]}`);
  }
  if (pos + length > buf.length) {
    throw new RecordError(
      `unexpected EOF in data, record type ${buf[offset]} length ${length}`,
    );
  }
  return { record: { type, data: buf.subarray(pos, pos + length), offset }, next: pos + length };
}

/** Decodes every record of `buf` in file order (pointers not followed). */
export function decodeRecords(buf: Uint8Array): QueueRecord[] {
  const out: QueueRecord[] = [];
  let at = 0;
  for (;;) {
    const got = decodeRecordAt(buf, at);
    if (!got) return out;
    out.push(got.record);
    at = got.next;
  }
}

/** Concatenates records into one buffer (a queue file's bytes). */
export function joinRecords(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The value of a p record (a 15-character offset); throws on a malformed one. */
export function pointerTarget(record: QueueRecord): number {
  const text = recordText(record).trim();
  if (!/^\d+$/.test(text)) {
    throw new RecordError(`malformed pointer record value: ${recordText(record)}`);
  }
  return parseInt(text, 10);
}

/** A p record pointing at `offset`, padded to Postfix's fixed 15 characters. */
export function pointerRecord(offset: number): Uint8Array {
  return encodeRecord(RecordType.PTR, String(offset).padStart(15, " "));
}

/**
 * Reads records the way Postfix's readers do: follows p records (unless
 * `raw`), skips w padding, and reports for each record the offset the reader
 * stood at before the read (which, after a pointer, is the pointer's offset).
 */
export class RecordReader {
  private at: number;
  private hops = 0;

  constructor(private readonly buf: Uint8Array, start = 0, private readonly raw = false) {
    this.at = start;
  }

  /** The offset the next read starts at. */
  get position(): number {
    return this.at;
  }

  /** The next record, or null at the end of the data; `readOffset` is where the read began. */
  next(): (QueueRecord & { readOffset: number }) | null {
    const readOffset = this.at;
    for (;;) {
      const got = decodeRecordAt(this.buf, this.at);
      if (!got) return null;
      this.at = got.next;
      const { record } = got;
      if (this.raw) return { ...record, readOffset };
      if (record.type === RecordType.PTR_PAD) continue;
      if (record.type === RecordType.PTR) {
        const target = pointerTarget(record);
        // A pointer loop would otherwise spin forever on a corrupt file.
        if (++this.hops > this.buf.length) throw new RecordError("pointer loop");
        if (target > this.buf.length) {
          throw new RecordError(`pointer record value out of range: ${target}`);
        }
        // Postfix's writers use a zero pointer as "nothing appended yet".
        if (target !== 0) this.at = target;
        continue;
      }
      return { ...record, readOffset };
    }
  }
}

/**
 * Decodes records from a byte stream that arrives in chunks (postdrop's
 * standard input): push() returns the records completed so far; end()
 * throws RecordError when the stream stops inside a record.
 */
export class RecordStreamDecoder {
  private pending: Uint8Array = new Uint8Array(0);
  private offset = 0;

  /** Adds a chunk; returns the records it completes. */
  push(chunk: Uint8Array): QueueRecord[] {
    const buf = this.pending.length ? joinRecords([this.pending, chunk]) : chunk;
    const out: QueueRecord[] = [];
    let at = 0;
    for (;;) {
      let got;
      try {
        got = decodeRecordAt(buf, at);
      } catch (err) {
        // Only a record cut off by the chunk boundary: wait for more data.
        if (err instanceof RecordError && /unexpected EOF/.test(err.message)) break;
        throw err;
      }
      if (!got) break;
      out.push({ ...got.record, data: got.record.data.slice(), offset: this.offset + at });
      at = got.next;
    }
    this.pending = buf.slice(at);
    this.offset += at;
    return out;
  }

  /** Whether the stream stopped between records. */
  get atBoundary(): boolean {
    return this.pending.length === 0;
  }

  /** Ends the stream; throws the reason when it stopped inside a record. */
  end(): void {
    if (this.pending.length) decodeRecordAt(this.pending, 0);
  }
}
