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
import { mapFile, type MappedFile } from "./mmap.ts";

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
  private file?: MappedFile;

  constructor(readonly name: string, options: OpenOptions) {
    this.flags = defaultFlags(options.flags);
    const path = cdbFileName(name);
    try {
      this.file = mapFile(path);
      this.data = this.file.data;
    } catch (err) {
      throw new DictError(`open database ${path}: ${describeOsError(err)}`);
    }
    if (this.data.length < 2048) throw new DictError(`open database ${path}: not a cdb file`);
    this.view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.lookupSync(key));
  }

  lookupMany(keys: string[]): Promise<(string | undefined)[]> {
    return Promise.resolve(keys.map((k) => this.lookupSync(k)));
  }

  private scratch = new Uint8Array(1024);

  // Keys are encoded into a reused buffer: ASCII by hand, the rest by encodeInto().
  private encodeKey(key: string): Uint8Array {
    if (this.scratch.length < key.length * 3) this.scratch = new Uint8Array(key.length * 3);
    const buf = this.scratch;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) return buf.subarray(0, encoder.encodeInto(key, buf).written);
      buf[i] = c;
    }
    return buf.subarray(0, key.length);
  }

  /** The synchronous lookup behind lookup(). */
  lookupSync(key: string): string | undefined {
    key = foldKey(key, this.flags);
    if (this.flags.try1Null) {
      const v = this.find(this.encodeKey(key + "\0"));
      if (v !== undefined) {
        this.flags.try0Null = false;
        return v.endsWith("\0") ? v.slice(0, -1) : v;
      }
    }
    if (this.flags.try0Null) {
      const v = this.find(this.encodeKey(key));
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
    // Values were copied into strings, so nothing refers to the mapping now.
    this.data = new Uint8Array(0);
    this.view = new DataView(this.data.buffer);
    this.file?.release();
    this.file = undefined;
    return Promise.resolve();
  }
}

/** Collects entries and writes the cdb file when closed. */
class CdbWriter implements Dict {
  readonly type = "cdb";
  readonly flags: DictFlags;
  private builder = new CdbBuilder();
  private closed = false;

  constructor(readonly name: string, private options: OpenOptions) {
    this.flags = defaultFlags(options.flags);
  }

  private storedKey(key: string): string {
    key = foldKey(key, this.flags);
    return this.flags.try1Null && !this.flags.try0Null ? key + "\0" : key;
  }

  lookup(key: string): Promise<string | undefined> {
    const v = this.builder.get(this.storedKey(key));
    return Promise.resolve(v?.endsWith("\0") ? v.slice(0, -1) : v);
  }

  update(key: string, value: string): Promise<UpdateResult> {
    const k = this.storedKey(key);
    const v = this.flags.try1Null && !this.flags.try0Null ? value + "\0" : value;
    const replace = this.flags.dupReplace;
    const result = this.builder.add(k, v, replace);
    if (result === "duplicate" && !this.flags.dupIgnore && this.flags.dupWarn) {
      warn(`${this.name}: duplicate entry: "${k.replace(/\0$/, "")}"`);
    }
    return Promise.resolve(result);
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.builder.remove(this.storedKey(key)));
  }

  async *sequence(): AsyncIterable<[string, string]> {
    for (const [k, v] of this.builder.entries()) {
      yield [k.replace(/\0$/, ""), v.replace(/\0$/, "")];
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const path = cdbFileName(this.name);
    const temp = `${path}.${Deno.pid}.tmp`;
    try {
      Deno.writeFileSync(temp, this.builder.finish(), { mode: this.options.mode ?? 0o644 });
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

/**
 * Builds a cdb file in memory. Records are encoded straight into one
 * growing buffer (no per-string allocation) and found again through an
 * open-addressing index on their hashes, for duplicate checks; the hash
 * tables are appended by finish().
 */
export class CdbBuilder {
  private out = new Uint8Array(1 << 20);
  private pos = 2048;
  private hashes = new Uint32Array(1 << 12);
  private positions = new Uint32Array(1 << 12);
  private dead = new Uint8Array(1 << 12);
  private deadCount = 0;
  private count = 0;
  private index = new Int32Array(1 << 13); // entry number + 1, or 0

  /** Adds an entry; a duplicate key is kept, or replaced when `replace`. */
  add(key: string, value: string, replace = false): "stored" | "duplicate" | "replaced" {
    const start = this.pos;
    this.pos += 8;
    const klen = this.put(key);
    const out = this.out;
    let h = 5381;
    for (let i = this.pos, end = this.pos + klen; i < end; i++) h = (((h << 5) + h) ^ out[i]) >>> 0;
    const old = this.find(h, start + 8, klen);
    if (old >= 0 && !replace) {
      this.pos = start; // drop the half-written record
      return "duplicate";
    }
    this.pos += klen;
    const vlen = this.put(value);
    this.pos += vlen;
    writeU32(this.out, start, klen);
    writeU32(this.out, start + 4, vlen);
    if (old >= 0) {
      this.dead[old] = 1;
      this.deadCount++;
      this.unindex(old);
    }
    this.append(h, start);
    return old >= 0 ? "replaced" : "stored";
  }

  /** The value of `key`, or undefined. */
  get(key: string): string | undefined {
    const kb = encoder.encode(key);
    const at = this.pos;
    this.ensure(kb.length);
    this.out.set(kb, at);
    const i = this.find(cdbHash(kb), at, kb.length);
    if (i < 0) return undefined;
    return this.record(this.positions[i])[1];
  }

  /** Removes `key`; false when it was not there. */
  remove(key: string): boolean {
    const kb = encoder.encode(key);
    const at = this.pos;
    this.ensure(kb.length);
    this.out.set(kb, at);
    const i = this.find(cdbHash(kb), at, kb.length);
    if (i < 0) return false;
    this.dead[i] = 1;
    this.deadCount++;
    this.unindex(i);
    return true;
  }

  /** The live entries in the order they were added. */
  *entries(): Generator<[string, string]> {
    for (let i = 0; i < this.count; i++) if (!this.dead[i]) yield this.record(this.positions[i]);
  }

  /** The complete cdb file. */
  finish(): Uint8Array {
    if (this.deadCount) return buildCdb([...this.entries()]);
    const count = this.count;
    const total = this.pos + count * 16;
    if (total > 0xffffffff) throw new DictError("cdb file would exceed 4 GB");
    const out = new Uint8Array(total);
    out.set(this.out.subarray(0, this.pos));
    const view = new DataView(out.buffer);
    const hashes = this.hashes;
    const counts = new Uint32Array(256);
    for (let i = 0; i < count; i++) counts[hashes[i] & 255]++;
    // Group the entries by table (a counting sort), then place each in its slots.
    const starts = new Uint32Array(257);
    for (let t = 0; t < 256; t++) starts[t + 1] = starts[t] + counts[t];
    const order = new Uint32Array(count);
    const fill = starts.slice(0, 256);
    for (let i = 0; i < count; i++) order[fill[hashes[i] & 255]++] = i;
    let pos = this.pos;
    for (let t = 0; t < 256; t++) {
      const len = counts[t] * 2;
      view.setUint32(t * 8, pos, true);
      view.setUint32(t * 8 + 4, len, true);
      for (let n = starts[t]; n < starts[t + 1]; n++) {
        const i = order[n];
        let slot = (hashes[i] >>> 8) % len;
        while (view.getUint32(pos + slot * 8 + 4, true) !== 0) {
          slot = slot + 1 === len ? 0 : slot + 1;
        }
        view.setUint32(pos + slot * 8, hashes[i], true);
        view.setUint32(pos + slot * 8 + 4, this.positions[i], true);
      }
      pos += len * 8;
    }
    return out;
  }

  private record(at: number): [string, string] {
    const out = this.out;
    const klen = readU32(out, at), vlen = readU32(out, at + 4);
    const k = decoder.decode(out.subarray(at + 8, at + 8 + klen));
    return [k, decoder.decode(out.subarray(at + 8 + klen, at + 8 + klen + vlen))];
  }

  private ensure(bytes: number): void {
    if (this.out.length - this.pos >= bytes) return;
    const bigger = new Uint8Array(Math.max(this.out.length * 2, this.pos + bytes + 16));
    bigger.set(this.out.subarray(0, this.pos));
    this.out = bigger;
  }

  // ASCII is copied by hand: encodeInto() per short string costs more.
  private put(text: string): number {
    this.ensure(text.length * 3);
    const out = this.out, at = this.pos, n = text.length;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) return encoder.encodeInto(text, out.subarray(at)).written;
      out[at + i] = c;
    }
    return n;
  }

  /** The entry whose key is the `klen` bytes at `at` (hash `h`), or -1. */
  private find(h: number, at: number, klen: number): number {
    const index = this.index, mask = index.length - 1, out = this.out;
    for (let slot = h & mask;; slot = (slot + 1) & mask) {
      const e = index[slot];
      if (e === 0) return -1;
      if (e < 0 || this.hashes[e - 1] !== h) continue;
      const rec = this.positions[e - 1];
      if (readU32(out, rec) !== klen) continue;
      let same = true;
      for (let i = 0; i < klen; i++) {
        if (out[rec + 8 + i] !== out[at + i]) {
          same = false;
          break;
        }
      }
      if (same) return e - 1;
    }
  }

  private unindex(entry: number): void {
    const index = this.index, mask = index.length - 1;
    for (let slot = this.hashes[entry] & mask;; slot = (slot + 1) & mask) {
      if (index[slot] === entry + 1) {
        index[slot] = -1; // a tombstone keeps later probes going
        return;
      }
      if (index[slot] === 0) return;
    }
  }

  private append(h: number, at: number): void {
    if (this.count === this.hashes.length) {
      const n = this.count * 2;
      const grow = <T extends Uint32Array | Uint8Array>(a: T, b: T): T => (b.set(a), b);
      this.hashes = grow(this.hashes, new Uint32Array(n));
      this.positions = grow(this.positions, new Uint32Array(n));
      this.dead = grow(this.dead, new Uint8Array(n));
    }
    this.hashes[this.count] = h;
    this.positions[this.count] = at;
    this.count++;
    if (this.count * 2 > this.index.length) this.reindex();
    const index = this.index, mask = index.length - 1;
    let slot = h & mask;
    while (index[slot] > 0) slot = (slot + 1) & mask;
    index[slot] = this.count;
  }

  private reindex(): void {
    const index = new Int32Array(this.index.length * 2);
    const mask = index.length - 1;
    for (let i = 0; i < this.count - 1; i++) {
      if (this.dead[i]) continue;
      let slot = this.hashes[i] & mask;
      while (index[slot] !== 0) slot = (slot + 1) & mask;
      index[slot] = i + 1;
    }
    this.index = index;
  }
}

function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 255;
  out[at + 1] = (n >>> 8) & 255;
  out[at + 2] = (n >>> 16) & 255;
  out[at + 3] = n >>> 24;
}

function readU32(out: Uint8Array, at: number): number {
  return (out[at] | (out[at + 1] << 8) | (out[at + 2] << 16) | (out[at + 3] << 24)) >>> 0;
}

/** Encodes `entries` as a complete cdb file (a later duplicate key is kept too). */
export function buildCdb(entries: Iterable<[string, string]>): Uint8Array {
  const b = new CdbBuilder();
  for (const [k, v] of entries) b.add(k, v, true);
  return b.finish();
}
