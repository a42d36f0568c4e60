// The queue file cleanup(8) writes, built as records in memory: the size
// record first (patched when the message is complete), then the envelope,
// the content and the extracted segment, as record(5)'s layout requires.

import { encodeRecord, joinRecords, RecordType } from "../../lib/queue/record.ts";

/** An output queue file under construction. */
export class QueueFileBuilder {
  private parts: Uint8Array[] = [];
  private sizePart = -1;
  /** Bytes written so far: the next record's offset. */
  offset = 0;

  /** Appends one record. */
  record(type: string, data: string | Uint8Array = ""): void {
    const bytes = encodeRecord(type, data);
    this.parts.push(bytes);
    this.offset += bytes.length;
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
    this.sizePart = this.parts.length;
    this.record(RecordType.SIZE, formatSize([0, 0, 0, 0, 0, 0]));
  }

  /** Fills in the size record with its six numbers. */
  patchSize(fields: number[]): void {
    if (this.sizePart < 0) return;
    this.parts[this.sizePart] = encodeRecord(RecordType.SIZE, formatSize(fields));
  }

  /** The finished file's bytes. */
  bytes(): Uint8Array {
    return joinRecords(this.parts);
  }
}

/** Six numbers, each right-aligned in 15 characters, as Postfix's size record holds them. */
export function formatSize(fields: number[]): string {
  return fields.map((n) => String(n).padStart(15, " ")).join(" ");
}
