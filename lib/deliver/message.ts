// The message content of a queue file, as delivery agents read it: from the
// C record's data offset, N and L records (L: a fragment the next record
// continues) joined into lines, p pointers followed, up to the X record
// that ends the content. Every delivery agent (local, virtual, pipe, smtp,
// lmtp) writes the message through this one reader, so that a header added
// by cleanup through a pointer, or a line longer than line_length_limit, is
// handed on the same way everywhere.

import { RecordReader, RecordType } from "../queue/record.ts";
import { readQueueFile } from "../queue/file.ts";

/** One logical line of the message, without its line ending. */
export type MessageLine = Uint8Array;

/** A message's content split at the empty line between header and body. */
export interface MessageContent {
  /** Header lines, continuation lines kept separate, as stored. */
  header: MessageLine[];
  /** Body lines (after the empty separator line, which is not included). */
  body: MessageLine[];
  /** Whether the content had an empty separator line (false: header only, or no header). */
  separated: boolean;
}

/** Thrown when the content region of a queue file is damaged. */
export class MessageContentError extends Error {}

/** Reads every content line of the queue file bytes `data`, starting at `dataOffset`. */
export function contentLines(data: Uint8Array, dataOffset: number): MessageLine[] {
  const reader = new RecordReader(data, dataOffset);
  const lines: MessageLine[] = [];
  let parts: Uint8Array[] = [];
  for (;;) {
    const rec = reader.next();
    if (!rec) throw new MessageContentError("premature end of message content");
    if (rec.type === RecordType.XTRA) break;
    if (rec.type === "N" || rec.type === "L") {
      parts.push(rec.data);
      if (rec.type === "N") {
        lines.push(parts.length === 1 ? parts[0] : concat(parts));
        parts = [];
      }
      continue;
    }
    throw new MessageContentError(`unexpected record type ${rec.type} in message content`);
  }
  if (parts.length) lines.push(concat(parts));
  return lines;
}

/** Splits content lines at the first empty line (a message that starts with a body line has no header). */
export function splitContent(lines: MessageLine[]): MessageContent {
  let i = 0;
  // A first line that is not a header field (nor a continuation) starts the body.
  if (lines.length && !looksLikeHeader(lines[0])) {
    return { header: [], body: lines, separated: false };
  }
  while (i < lines.length && lines[i].length > 0) i++;
  if (i === lines.length) return { header: lines, body: [], separated: false };
  return { header: lines.slice(0, i), body: lines.slice(i + 1), separated: true };
}

/** Reads and splits the content of the queue file at `path`. */
export function readMessage(path: string, dataOffset: number): MessageContent {
  return splitContent(contentLines(readQueueFile(path), dataOffset));
}

/** The message as bytes: header, separator, body, every line ended by `eol`. */
export function messageBytes(
  content: MessageContent,
  opts: { eol?: string; prepend?: string[]; transform?: (line: MessageLine) => MessageLine } = {},
): Uint8Array {
  const eol = new TextEncoder().encode(opts.eol ?? "\n");
  const enc = new TextEncoder();
  const out: Uint8Array[] = [];
  let size = 0;
  const push = (line: Uint8Array) => {
    const l = opts.transform ? opts.transform(line) : line;
    out.push(l, eol);
    size += l.length + eol.length;
  };
  for (const h of opts.prepend ?? []) push(enc.encode(h));
  for (const h of content.header) push(h);
  if (content.separated || content.header.length || opts.prepend?.length) {
    if (content.separated || content.body.length) push(new Uint8Array(0));
  }
  for (const b of content.body) push(b);
  const buf = new Uint8Array(size);
  let at = 0;
  for (const part of out) {
    buf.set(part, at);
    at += part.length;
  }
  return buf;
}

/** The value of the first header named `name` (case-insensitive), unfolded, or undefined. */
export function headerValue(content: MessageContent, name: string): string | undefined {
  return headerValues(content, name)[0];
}

/** The values of every header named `name` (case-insensitive), each unfolded. */
export function headerValues(content: MessageContent, name: string): string[] {
  const dec = new TextDecoder();
  const want = name.toLowerCase() + ":";
  const found: string[] = [];
  let current: string | undefined;
  for (const raw of content.header) {
    const line = dec.decode(raw);
    if (line.startsWith(" ") || line.startsWith("\t")) {
      if (current !== undefined) current += line;
      continue;
    }
    if (current !== undefined) found.push(current.trim());
    current = line.slice(0, want.length).toLowerCase() === want
      ? line.slice(want.length)
      : undefined;
  }
  if (current !== undefined) found.push(current.trim());
  return found;
}

function looksLikeHeader(line: Uint8Array): boolean {
  if (line.length === 0) return true;
  if (line[0] === 0x20 || line[0] === 0x09) return false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === 0x3a) return i > 0;
    // Field names are printable ASCII other than space and colon.
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return false;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
