// cdb: tables: constant databases (`name.cdb`) in the standard format that
// tinycdb and the reference's postmap write, so either can read the other's.
//
// Layout: 256 (position, length) pairs of little-endian 32-bit words, then
// records (key length, value length, key, value), then 256 hash tables of
// (hash, record position) slots, each twice as long as its entry count.
// A build collects the entries, writes a temporary file and renames it.

import {
  defaultFlags,
  describeOsError,
  type Dict,
  DictError,
  type DictFlags,
  foldKey,
  type OpenOptions,
  unsupported,
  type UpdateResult,
} from "./dict.ts";
import { warn } from "../lib/log.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The file a cdb table `name` lives in. */
export function cdbFileName(name: string): string {
  return `${name}.cdb`;
}

/** The cdb hash of `bytes` (djb's: h = h * 33 ^ c, from 5381). */
export function cdbHash(bytes: Uint8Array): number {
  let h = 5381;
  for (let i = 0; i < bytes.length; i++) h = (((h << 5) + h) ^ bytes[i]) >>> 0;
  return h;
}

/** Opens a cdb table for reading, or (create) for building. */
export function openCdb(name: string, options: OpenOptions = {}): Dict {
  if (options.create) return new CdbWriter(name, options);
  if (options.write) throw unsupported("cdb", name, "update");
  return new CdbReader(name, options);
}

/** Reads a cdb file held in memory. */
class CdbReader implements Dict {
  readonly type = "cdb";
  readonly flags: DictFlags;
  private data: Uint8Array;
  private view: DataView;

  constructor(readonly name: string, options: OpenOptions) {
    this.flags = defaultFlags(options.flags);
    const path = cdbFileName(name);
    try {
      this.data = Deno.readFileSync(path);
    } catch (err) {
      throw new DictError(`open database ${path}: ${describeOsError(err)}`);
    }
    if (this.data.length < 2048) throw new DictError(`open database ${path}: not a cdb file`);
    this.view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.lookupSync(key));
  }

  /** The synchronous lookup behind lookup(). */
  lookupSync(key: string): string | undefined {
    key = foldKey(key, this.flags);
    if (this.flags.try1Null) {
      const v = this.find(encoder.encode(key + "\0"));
      if (v !== undefined) {
        this.flags.try0Null = false;
        return v.endsWith("\0") ? v.slice(0, -1) : v;
      }
    }
    if (this.flags.try0Null) {
      const v = this.find(encoder.encode(key));
      if (v !== undefined) {
        this.flags.try1Null = false;
        return v;
      }
    }
    return undefined;
  }

  private find(key: Uint8Array): string | undefined {
    const h = cdbHash(key);
    const table = (h & 255) * 8;
    const tpos = this.view.getUint32(table, true);
    const tlen = this.view.getUint32(table + 4, true);
    if (tlen === 0) return undefined;
    let slot = (h >>> 8) % tlen;
    for (let n = 0; n < tlen; n++) {
      const at = tpos + slot * 8;
      const rpos = this.view.getUint32(at + 4, true);
      if (rpos === 0) return undefined;
      if (this.view.getUint32(at, true) === h) {
        const klen = this.view.getUint32(rpos, true);
        if (klen === key.length && this.sameBytes(rpos + 8, key)) {
          const vlen = this.view.getUint32(rpos + 4, true);
          const start = rpos + 8 + klen;
          return decoder.decode(this.data.subarray(start, start + vlen));
        }
      }
      slot = slot + 1 === tlen ? 0 : slot + 1;
    }
    return undefined;
  }

  private sameBytes(at: number, key: Uint8Array): boolean {
    for (let i = 0; i < key.length; i++) if (this.data[at + i] !== key[i]) return false;
    return true;
  }

  update(): Promise<UpdateResult> {
    return Promise.reject(unsupported("cdb", this.name, "update"));
  }

  delete(): Promise<boolean> {
    return Promise.reject(unsupported("cdb", this.name, "delete"));
  }

  // The records lie one after another from byte 2048 to the first hash table.
  async *sequence(): AsyncIterable<[string, string]> {
    let end = this.data.length;
    for (let t = 0; t < 256; t++) end = Math.min(end, this.view.getUint32(t * 8, true));
    let pos = 2048;
    while (pos + 8 <= end) {
      const klen = this.view.getUint32(pos, true);
      const vlen = this.view.getUint32(pos + 4, true);
      const k = decoder.decode(this.data.subarray(pos + 8, pos + 8 + klen));
      const v = decoder.decode(this.data.subarray(pos + 8 + klen, pos + 8 + klen + vlen));
      yield [k.endsWith("\0") ? k.slice(0, -1) : k, v.endsWith("\0") ? v.slice(0, -1) : v];
      pos += 8 + klen + vlen;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Collects entries and writes the cdb file when closed. */
class CdbWriter implements Dict {
  readonly type = "cdb";
  readonly flags: DictFlags;
  private entries = new Map<string, string>();
  private closed = false;

  constructor(readonly name: string, private options: OpenOptions) {
    this.flags = defaultFlags(options.flags);
  }

  private storedKey(key: string): string {
    key = foldKey(key, this.flags);
    return this.flags.try1Null && !this.flags.try0Null ? key + "\0" : key;
  }

  lookup(key: string): Promise<string | undefined> {
    const v = this.entries.get(this.storedKey(key));
    return Promise.resolve(v?.endsWith("\0") ? v.slice(0, -1) : v);
  }

  update(key: string, value: string): Promise<UpdateResult> {
    const k = this.storedKey(key);
    const v = this.flags.try1Null && !this.flags.try0Null ? value + "\0" : value;
    if (!this.entries.has(k)) {
      this.entries.set(k, v);
      return Promise.resolve("stored");
    }
    if (this.flags.dupReplace) {
      this.entries.set(k, v);
      return Promise.resolve("replaced");
    }
    if (!this.flags.dupIgnore && this.flags.dupWarn) {
      warn(`${this.name}: duplicate entry: "${k.replace(/\0$/, "")}"`);
    }
    return Promise.resolve("duplicate");
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.entries.delete(this.storedKey(key)));
  }

  async *sequence(): AsyncIterable<[string, string]> {
    for (const [k, v] of this.entries) yield [k.replace(/\0$/, ""), v.replace(/\0$/, "")];
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const path = cdbFileName(this.name);
    const temp = `${path}.${Deno.pid}.tmp`;
    try {
      Deno.writeFileSync(temp, buildCdb(this.entries), { mode: this.options.mode ?? 0o644 });
      if (this.options.mode !== undefined) Deno.chmodSync(temp, this.options.mode);
      if (this.flags.sync) {
        const f = Deno.openSync(temp, { read: true, write: true });
        f.syncSync();
        f.close();
      }
      Deno.renameSync(temp, path);
    } catch (err) {
      try {
        Deno.removeSync(temp);
      } catch { /* nothing written */ }
      throw new DictError(`write ${path}: ${describeOsError(err)}`);
    }
    return Promise.resolve();
  }

  abort(): void {
    this.closed = true;
  }
}

/** Encodes `entries` as a complete cdb file. */
export function buildCdb(entries: Iterable<[string, string]>): Uint8Array {
  const keys: Uint8Array[] = [];
  const values: Uint8Array[] = [];
  let size = 2048;
  for (const [k, v] of entries) {
    const kb = encoder.encode(k);
    const vb = encoder.encode(v);
    keys.push(kb);
    values.push(vb);
    size += 8 + kb.length + vb.length + 16; // the record and its two slots
  }
  if (size > 0xffffffff) throw new DictError("cdb file would exceed 4 GB");
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  const hashes = new Uint32Array(keys.length);
  const positions = new Uint32Array(keys.length);
  const counts = new Uint32Array(256);
  let pos = 2048;
  for (let i = 0; i < keys.length; i++) {
    const kb = keys[i], vb = values[i];
    view.setUint32(pos, kb.length, true);
    view.setUint32(pos + 4, vb.length, true);
    out.set(kb, pos + 8);
    out.set(vb, pos + 8 + kb.length);
    hashes[i] = cdbHash(kb);
    positions[i] = pos;
    counts[hashes[i] & 255]++;
    pos += 8 + kb.length + vb.length;
  }
  // Group the entries by table (a counting sort), then place each in its slots.
  const starts = new Uint32Array(257);
  for (let t = 0; t < 256; t++) starts[t + 1] = starts[t] + counts[t];
  const order = new Uint32Array(keys.length);
  const fill = starts.slice(0, 256);
  for (let i = 0; i < keys.length; i++) order[fill[hashes[i] & 255]++] = i;
  for (let t = 0; t < 256; t++) {
    const len = counts[t] * 2;
    view.setUint32(t * 8, pos, true);
    view.setUint32(t * 8 + 4, len, true);
    for (let n = starts[t]; n < starts[t + 1]; n++) {
      const i = order[n];
      let slot = (hashes[i] >>> 8) % len;
      while (view.getUint32(pos + slot * 8 + 4, true) !== 0) slot = slot + 1 === len ? 0 : slot + 1;
      view.setUint32(pos + slot * 8, hashes[i], true);
      view.setUint32(pos + slot * 8 + 4, positions[i], true);
    }
    pos += len * 8;
  }
  return out;
}
