// What postmap(1) and postalias(1) share: turning their flags into table
// flags, building a table from a source file atomically, and the query
// (-q), delete (-d) and list (-s) loops with their exit statuses.

import { describeOsError, type Dict, DictError, type DictFlags, type OpenOptions } from "./dict.ts";
import { openMap, requireMapType, splitMapSpec } from "./registry.ts";

/** The flags both commands take that shape how a table is opened. */
export interface ToolFlags {
  /** -f: do not fold keys to lower case. */
  noFold: boolean;
  /** -N: include the null terminator. */
  withNull: boolean;
  /** -n: do not include the null terminator. */
  withoutNull: boolean;
  /** -r: replace duplicates. */
  replace: boolean;
  /** -w: ignore duplicates silently. */
  ignoreDups: boolean;
  /** UTF-8 checks (smtputf8_enable without -u). */
  utf8: boolean;
}

/** The table flags for reading (query, list) or writing (build, -i, -d). */
export function tableFlags(f: ToolFlags, writing: boolean): Partial<DictFlags> {
  let try0Null = true, try1Null = !writing;
  if (f.withNull) [try0Null, try1Null] = [false, true];
  if (f.withoutNull) [try0Null, try1Null] = [true, false];
  return {
    foldFix: !f.noFold,
    try0Null,
    try1Null,
    dupReplace: f.replace,
    dupIgnore: f.ignoreDups,
    dupWarn: !f.ignoreDups && !f.replace,
    utf8: f.utf8,
    lock: writing,
  };
}

/** `file` or `type:file`, with `defaultType` when no type is given. */
export function tableSpec(operand: string, defaultType: string): { type: string; name: string } {
  // A path cannot hold a type: "/x:y" is a file name.
  if (!operand.includes(":") || operand.startsWith("/") || operand.startsWith(".")) {
    return { type: defaultType, name: operand };
  }
  return splitMapSpec(operand);
}

/** Output collected and written in large pieces (postmap -q - and -s print much). */
export class OutputBuffer {
  private parts: string[] = [];
  private size = 0;
  private encoder = new TextEncoder();
  /** Appends a line (a newline is added). */
  line(text: string): void {
    this.parts.push(text, "\n");
    this.size += text.length + 1;
    if (this.size > 1 << 16) this.flush();
  }
  /** Writes what is pending to standard output. */
  flush(): void {
    if (!this.parts.length) return;
    const data = this.encoder.encode(this.parts.join(""));
    this.parts = [];
    this.size = 0;
    let off = 0;
    while (off < data.length) off += Deno.stdout.writeSync(data.subarray(off));
  }
}

/** The file mode for a new table: the source's read bits, or 0644 with -p. */
export function newTableMode(
  source: string,
  target: string,
  keepDefault: boolean,
): number | undefined {
  try {
    return Deno.statSync(target).mode! & 0o7777; // an existing table keeps its mode
  } catch { /* new */ }
  if (keepDefault) return 0o644;
  try {
    return (Deno.statSync(source).mode! & 0o644) | 0o600;
  } catch {
    return 0o644;
  }
}

/** Opens a table to read, turning a DictError into the text for fatal(). */
export function openForRead(spec: string, options: OpenOptions): Dict {
  return openMap(spec, { ...options, write: false, create: false });
}

/** The message for a failed lookup, as Postfix words it. */
export function queryError(dict: Dict, err: unknown): string {
  if (err instanceof DictError && err.kind === "unsupported") return err.message;
  const text = err instanceof DictError ? err.message : describeOsError(err);
  return `table ${dict.type}:${dict.name}: query error: ${text}`;
}

const warnedEmpty = new Set<Dict>();

/** Whether decoded text held bytes that were not UTF-8 (the decoder put U+FFFD there). */
export function malformedUtf8(text: string): boolean {
  return text.includes("\uFFFD");
}

/** Text as Postfix shows malformed input: each bad sequence as "?". */
function shown(text: string): string {
  return text.replaceAll("\uFFFD", "?");
}

/**
 * With SMTPUTF8 on (utf8), drops source entries that are not valid UTF-8,
 * with the reference's warning; otherwise passes every entry through.
 */
export function* utf8Entries<T extends { lineno: number }>(
  entries: Iterable<T>,
  line: (e: T) => string,
  file: string,
  utf8: boolean,
  report: (text: string) => void,
): Generator<T> {
  for (const e of entries) {
    const text = line(e);
    if (utf8 && malformedUtf8(text)) {
      report(`${file}, line ${e.lineno}: non-UTF-8 input "${shown(text)}" -- ignoring this line`);
      continue;
    }
    yield e;
  }
}

function badKey(d: Dict, key: string, warn: (text: string) => void): void {
  const suffix = d.type === "cdb"
    ? ".cdb"
    : ["hash", "btree", "lmdb"].includes(d.type)
    ? ".db"
    : "";
  warn(
    `${d.type}:${d.name}${suffix}: non-UTF-8 key "${
      shown(key)
    }": malformed UTF-8 or invalid codepoint`,
  );
}

/**
 * Looks `key` up in each table in turn; the first value found wins. An empty
 * value is reported as the reference does (and still returned); a failure
 * is returned as Postfix's query error text.
 */
export async function lookupFirst(
  dicts: Dict[],
  key: string,
  warn: (text: string) => void,
  utf8 = false,
): Promise<{ value?: string; error?: string }> {
  if (utf8 && malformedUtf8(key) && dicts.length) {
    badKey(dicts[0], key, warn);
    return {};
  }
  for (const d of dicts) {
    let value: string | undefined;
    try {
      value = await d.lookup(key);
    } catch (err) {
      return { error: queryError(d, err) };
    }
    if (value === undefined) continue;
    if (value === "") emptyWarning(d, key, warn);
    return { value };
  }
  return {};
}

/**
 * Looks up a list of keys as `postmap -q -` does: each key in each table in
 * turn, the first value winning; tables that answer batches (hash, btree)
 * get the keys still unresolved in one call per table. Results come back
 * in key order; a failure is returned as Postfix's query error text.
 */
export async function lookupKeys(
  dicts: Dict[],
  keys: string[],
  warn: (text: string) => void,
  utf8 = false,
): Promise<{ values: (string | undefined)[]; error?: string }> {
  const values: (string | undefined)[] = new Array(keys.length);
  let pending = keys.map((_, i) => i);
  if (utf8 && dicts.length) {
    pending = pending.filter((i) =>
      !malformedUtf8(keys[i]) || (badKey(dicts[0], keys[i], warn), false)
    );
  }
  for (const d of dicts) {
    if (!pending.length) break;
    const found: (string | undefined)[] = [];
    try {
      if (d.lookupMany) found.push(...await d.lookupMany(pending.map((i) => keys[i])));
      else for (const i of pending) found.push(await d.lookup(keys[i]));
    } catch (err) {
      return { values, error: queryError(d, err) };
    }
    const still: number[] = [];
    pending.forEach((i, n) => {
      const v = found[n];
      if (v === undefined) return still.push(i);
      if (v === "") emptyWarning(d, keys[i], warn);
      values[i] = v;
    });
    pending = still;
  }
  return { values };
}

function emptyWarning(d: Dict, key: string, warn: (text: string) => void): void {
  warn(`table ${d.type}:${d.name}: key ${key}: empty string result is not allowed`);
  if (!warnedEmpty.has(d)) {
    warnedEmpty.add(d);
    warn(`table ${d.type}:${d.name} should return NO RESULT in case of NOT FOUND`);
  }
}

/** Whether a type can be built from a source file; the error text otherwise. */
export function creatableError(type: string): string | undefined {
  const t = requireMapType(type);
  if (type === "proxy") return "can't create maps via the proxy service";
  return t.creatable
    ? undefined
    : `unsupported dictionary type: ${type} does not support bulk-mode creation.`;
}

/** Base64 of the files named in `value` (postmap -F), joined by newlines. */
export function fileValue(value: string): string {
  const names = value.split(/[\s,]+/).filter(Boolean);
  const chunks: Uint8Array[] = [];
  for (const [i, name] of names.entries()) {
    if (i > 0) chunks.push(new Uint8Array([10]));
    try {
      chunks.push(Deno.readFileSync(name));
    } catch (err) {
      throw new DictError(`open ${name}: ${describeOsError(err)}`);
    }
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return encodeBase64(all);
}

/** Standard base64. */
export function encodeBase64(data: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    bin += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Decodes a base64 value for printing (postmap -F); undefined when it is not base64. */
export function decodeBase64(text: string): string | undefined {
  try {
    const bin = atob(text);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}

/** Reads all of standard input as text (synchronously: a stream costs more here). */
export function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(1 << 20);
    const n = Deno.stdin.readSync(buf);
    if (n === null || n === 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  const all = chunks.length === 1 ? chunks[0] : new Uint8Array(total);
  if (chunks.length > 1) {
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
  }
  return Promise.resolve(new TextDecoder().decode(all));
}

/** Lines of `text` without their newlines (a final empty piece dropped). */
export function textLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  if (!text.includes("\r")) return lines;
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

/**
 * Splits a message into lookup keys as postmap -h and -b do: each logical
 * header (continuation lines joined with newlines) up to the first line that
 * is not a header, or each body line from there on (the empty line that ends
 * the headers included). With `mime` (-m), the headers of MIME parts and of
 * attached messages are header keys too, and not body keys.
 */
export function messageKeys(text: string, headers: boolean, body: boolean, mime = false): string[] {
  const lines = textLines(text);
  const keys: string[] = [];
  const boundaries: string[] = [];
  let inHeaders = true;
  let current: string | undefined;
  let nested = false; // the entity whose headers are being read is message/rfc822
  const endHeader = () => {
    if (current === undefined) return;
    if (headers) keys.push(current);
    if (mime) {
      const type = /^content-type:\s*([^;\s]+)(.*)$/is.exec(current);
      if (type) {
        const mediaType = type[1].toLowerCase();
        const b = /boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(type[2]);
        if (mediaType.startsWith("multipart/") && b) boundaries.push(b[1] ?? b[2]);
        if (mediaType === "message/rfc822") nested = true;
      }
    }
    current = undefined;
  };
  for (const line of lines) {
    if (inHeaders) {
      if (current !== undefined && /^[ \t]/.test(line)) {
        current += "\n" + line;
        continue;
      }
      endHeader();
      if (/^[!-9;-~]+:/.test(line)) {
        current = line;
        continue;
      }
      inHeaders = false;
      if (body) keys.push(line);
      // An attached message's own headers follow the part's empty line.
      if (nested && line === "") inHeaders = true;
      nested = false;
      continue;
    }
    if (body) keys.push(line);
    if (!mime || !line.startsWith("--")) continue;
    const at = boundaries.findIndex((b) => line === `--${b}` || line === `--${b}--`);
    if (at < 0) continue;
    if (line.endsWith("--") && line === `--${boundaries[at]}--`) {
      boundaries.length = at;
    } else {
      boundaries.length = at + 1;
      inHeaders = true; // a new part starts with its headers
    }
  }
  if (inHeaders) endHeader();
  return keys;
}

/** Sets a file's owner to that of `source` (a root postmap builds as the source's owner). */
export function chownLike(target: string, source: string): void {
  try {
    const st = Deno.statSync(source);
    if (st.uid !== null && st.gid !== null) Deno.chownSync(target, st.uid, st.gid);
  } catch { /* best effort: the table is still usable by root */ }
}
