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
 * reader per connection, fed with every chunk read.
 */
export class AttrReader {
  private buffer = new Uint8Array(0);

  /** Appends `chunk` and returns every list completed by it. */
  push(chunk: Uint8Array): AttrList[] {
    const merged = new Uint8Array(this.buffer.length + chunk.length);
    merged.set(this.buffer);
    merged.set(chunk, this.buffer.length);
    this.buffer = merged;
    const lists: AttrList[] = [];
    for (;;) {
      const parsed = parseOne(this.buffer);
      if (!parsed) break;
      lists.push(parsed.list);
      this.buffer = this.buffer.slice(parsed.used);
    }
    return lists;
  }

  /** Bytes received but not yet part of a complete list. */
  get pending(): number {
    return this.buffer.length;
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
