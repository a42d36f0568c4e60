// The queue file cleanup(8) writes, built as records in memory: the size
// record first (patched when the message is complete), then the envelope,
// the content and the extracted segment, as record(5)'s layout requires.
// Records go straight into one growing buffer (lib/queue/record.ts's length
// encoding), so a large message is copied once, not once per line.

import { encodeLength, RecordType } from "../../lib/queue/record.ts";

const encoder = new TextEncoder();

/** An output queue file under construction. */
export class QueueFileBuilder {
  private buf = new Uint8Array(1 << 14);
  private sizeAt = -1;
  /** Bytes written so far: the next record's offset. */
  offset = 0;

  private reserve(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.offset + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.offset));
    this.buf = bigger;
  }

  /** Appends one record. */
  record(type: string, data: string | Uint8Array = ""): void {
    const body = typeof data === "string" ? encoder.encode(data) : data;
    const length = encodeLength(body.length);
    this.reserve(1 + length.length + body.length);
    this.buf[this.offset] = type.charCodeAt(0);
    this.buf.set(length, this.offset + 1);
    this.buf.set(body, this.offset + 1 + length.length);
    this.offset += 1 + length.length + body.length;
  }

  /** Appends a text line as records of at most `chunk` bytes: L fragments, then N. */
  line(data: Uint8Array, chunk: number): void {
    let at = 0;
    while (data.length - at >= chunk) {
      this.record(RecordType.CONT, data.subarray(at, at + chunk));
      at += chunk;
    }
    this.record(RecordType.NORM, data.subarray(at));
  }

  /** Writes the placeholder size record (must be the first record). */
  sizeRecord(): void {
    this.sizeAt = this.offset;
    this.record(RecordType.SIZE, formatSize([0, 0, 0, 0, 0, 0]));
  }

  /** Fills in the size record with its six numbers (same width: patched in place). */
  patchSize(fields: number[]): void {
    if (this.sizeAt < 0) return;
    const text = encoder.encode(formatSize(fields));
    const head = 1 + encodeLength(text.length).length;
    this.buf.set(text, this.sizeAt + head);
  }

  /** The finished file's bytes. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.offset);
  }
}

/** Six numbers, each right-aligned in 15 characters, as Postfix's size record holds them. */
export function formatSize(fields: number[]): string {
  return fields.map((n) => String(n).padStart(15, " ")).join(" ");
}
