// Postfix's attribute lists, the request/reply format between daemons
// (attr_print0/attr_scan0): `name NUL value NUL` pairs, ended by an empty
// name (one NUL). Nested lists and the base64/plain variants are not used
// between Posthorn's own daemons; public protocols live with their daemons.

/** One request or reply: attribute names to values, in order. */
export type AttrList = Map<string, string>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A malformed attribute stream (a name or value without its NUL at end of input). */
export class AttrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AttrError";
  }
}

/** Encodes `attrs` as one NUL-terminated attribute list. */
export function encodeAttrs(attrs: Record<string, string | number> | AttrList): Uint8Array {
  const entries = attrs instanceof Map ? [...attrs] : Object.entries(attrs);
  let text = "";
  for (const [name, value] of entries) {
    const v = String(value);
    if (!name || name.includes("\0") || v.includes("\0")) {
      throw new AttrError(`bad attribute: ${JSON.stringify(name)}`);
    }
    text += `${name}\0${v}\0`;
  }
  return encoder.encode(text + "\0");
}

/**
 * Accumulates bytes from a stream and yields complete attribute lists; a
 * reader per connection, fed with every chunk read. Work is linear in the
 * bytes received: a list is decoded once, when its end has arrived, and the
 * scan for that end resumes where the previous chunk left it.
 */
export class AttrReader {
  private buffer = new Uint8Array(0);
  /** Bytes of `buffer` in use (it grows by doubling). */
  private length = 0;
  /** Where the pending list starts in `buffer`. */
  private start = 0;
  /** Where the scan for the pending list's end resumes (a name's first byte). */
  private scan = 0;

  /** Appends `chunk` and returns every list completed by it. */
  push(chunk: Uint8Array): AttrList[] {
    this.append(chunk);
    const lists: AttrList[] = [];
    for (;;) {
      const end = this.findEnd();
      if (end < 0) break;
      lists.push(parseOne(this.buffer.subarray(this.start, end))!.list);
      this.start = this.scan = end;
    }
    if (this.start === this.length) this.start = this.scan = this.length = 0;
    return lists;
  }

  /** Bytes received but not yet part of a complete list. */
  get pending(): number {
    return this.length - this.start;
  }

  private append(chunk: Uint8Array): void {
    const pending = this.length - this.start;
    if (this.length + chunk.length > this.buffer.length) {
      // Drop what is consumed, and grow geometrically when still short.
      const size = Math.max(pending + chunk.length, 2 * pending, 4096);
      const grown = size > this.buffer.length ? new Uint8Array(size) : this.buffer;
      if (grown === this.buffer) grown.copyWithin(0, this.start, this.length);
      else grown.set(this.buffer.subarray(this.start, this.length));
      this.buffer = grown;
      this.scan -= this.start;
      this.length = pending;
      this.start = 0;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.length;
  }

  /** The offset just past the pending list, or -1 while it is incomplete. */
  private findEnd(): number {
    const data = this.buffer.subarray(0, this.length);
    for (;;) {
      const nameEnd = data.indexOf(0, this.scan);
      if (nameEnd < 0) return -1;
      if (nameEnd === this.scan) return nameEnd + 1;
      const valueEnd = data.indexOf(0, nameEnd + 1);
      if (valueEnd < 0) return -1;
      this.scan = valueEnd + 1;
    }
  }
}

/** Parses one complete list at the start of `data`, or null if it is incomplete. */
function parseOne(data: Uint8Array): { list: AttrList; used: number } | null {
  const list: AttrList = new Map();
  let at = 0;
  for (;;) {
    const nameEnd = data.indexOf(0, at);
    if (nameEnd < 0) return null;
    if (nameEnd === at) return { list, used: at + 1 };
    const valueEnd = data.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return null;
    list.set(
      decoder.decode(data.subarray(at, nameEnd)),
      decoder.decode(data.subarray(nameEnd + 1, valueEnd)),
    );
    at = valueEnd + 1;
  }
}

/** Decodes a buffer holding exactly one list (tests, datagrams). */
export function decodeAttrs(data: Uint8Array): AttrList {
  const parsed = parseOne(data);
  if (!parsed || parsed.used !== data.length) throw new AttrError("truncated attribute list");
  return parsed.list;
}
