// DNS message codec (RFC 1035 section 4, EDNS0 of RFC 6891, the AD/CD bits of
// RFC 4035): encodes and decodes whole messages, with name compression on
// output and loop-safe pointer following on input. Shared by the stub
// resolver and the test server.

/** Numeric RR types this codec knows by name. */
export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  TLSA: 52,
  ANY: 255,
} as const;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** The Internet class. */
export const CLASS_IN = 1;

/** Response codes (RFC 1035 4.1.1). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Type number to mnemonic, for the types named in TYPE. */
export function typeName(type: number): string {
  for (const [name, value] of Object.entries(TYPE)) if (value === type) return name;
  return `TYPE${type}`;
}

/** One question. */
export interface Question {
  name: string;
  type: number;
  class: number;
}

/**
 * One resource record. `value` is the presentation text of the data (see
 * DnsRecord in mod.ts); `preference` is set for MX, `strings` for TXT.
 * Unknown types carry their data as hex in `value`.
 */
export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  value: string;
  preference?: number;
  strings?: string[];
}

/** Header flags. */
export interface Flags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  rcode: number;
}

/** EDNS0 information carried in an OPT record. */
export interface Edns {
  udpSize: number;
  do: boolean;
}

/** A whole DNS message. */
export interface Message {
  id: number;
  flags: Flags;
  questions: Question[];
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
  edns?: Edns;
}

/** Thrown for a message that cannot be decoded or encoded. */
export class DnsFormatError extends Error {}

/** Default header flags: a plain query. */
export function defaultFlags(over: Partial<Flags> = {}): Flags {
  return {
    qr: false,
    opcode: 0,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    ad: false,
    cd: false,
    rcode: 0,
    ...over,
  };
}

/** Lower-cases a name and drops a trailing dot; "." stays the root. */
export function canonicalName(name: string): string {
  const trimmed = name.endsWith(".") && name.length > 1 ? name.slice(0, -1) : name;
  return trimmed === "." ? "" : trimmed.toLowerCase();
}

// ---------------------------------------------------------------- encoding

class Writer {
  private buf = new Uint8Array(512);
  length = 0;
  private names = new Map<string, number>();

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
  }

  u16(v: number): void {
    this.u8(v >> 8);
    this.u8(v);
  }

  u32(v: number): void {
    this.u16(Math.floor(v / 65536) & 0xffff);
    this.u16(v & 0xffff);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  setU16(at: number, v: number): void {
    this.buf[at] = (v >> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  /** Writes a domain name, compressing against names written before. */
  name(name: string, compress = true): void {
    const labels = splitLabels(name);
    let suffix = labels.map((l) => utf8Decoder.decode(l)).join(".").toLowerCase();
    for (let i = 0; i < labels.length; i++) {
      const at = this.names.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.length < 0x4000) this.names.set(suffix, this.length);
      this.u8(labels[i].length);
      this.bytes(labels[i]);
      suffix = suffix.slice(suffix.indexOf(".") + 1);
    }
    this.u8(0);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Splits a name into label bytes; validates label and name lengths. */
function splitLabels(name: string): Uint8Array[] {
  const canon = name.endsWith(".") ? name.slice(0, -1) : name;
  if (canon === "" || canon === ".") return [];
  const labels = canon.split(".").map(labelBytes);
  let total = 1;
  for (const label of labels) {
    if (label.length === 0) throw new DnsFormatError(`empty label in domain name: ${name}`);
    if (label.length > 63) throw new DnsFormatError(`label too long in domain name: ${name}`);
    total += label.length + 1;
  }
  if (total > 255) throw new DnsFormatError(`domain name too long: ${name}`);
  return labels;
}

/** A label's bytes: ASCII copied directly (the common case), anything else as UTF-8. */
function labelBytes(label: string): Uint8Array {
  const out = new Uint8Array(label.length);
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c > 0x7f) return utf8.encode(label);
    out[i] = c;
  }
  return out;
}

function flagsWord(f: Flags): number {
  return (f.qr ? 0x8000 : 0) | ((f.opcode & 0xf) << 11) | (f.aa ? 0x400 : 0) |
    (f.tc ? 0x200 : 0) | (f.rd ? 0x100 : 0) | (f.ra ? 0x80 : 0) | (f.ad ? 0x20 : 0) |
    (f.cd ? 0x10 : 0) | (f.rcode & 0xf);
}

/** Encodes a message to wire format. */
export function encodeMessage(msg: Message): Uint8Array {
  const w = new Writer();
  w.u16(msg.id);
  w.u16(flagsWord(msg.flags));
  w.u16(msg.questions.length);
  w.u16(msg.answers.length);
  w.u16(msg.authority.length);
  w.u16(msg.additional.length + (msg.edns ? 1 : 0));
  for (const q of msg.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rr of [...msg.answers, ...msg.authority, ...msg.additional]) writeRecord(w, rr);
  if (msg.edns) {
    w.u8(0); // root owner name
    w.u16(TYPE.OPT);
    w.u16(msg.edns.udpSize);
    w.u32(msg.edns.do ? 0x8000 : 0); // extended rcode 0, version 0, DO bit
    w.u16(0);
  }
  return w.result();
}

function writeRecord(w: Writer, rr: ResourceRecord): void {
  w.name(rr.name);
  w.u16(rr.type);
  w.u16(rr.class);
  w.u32(rr.ttl);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  writeRdata(w, rr);
  w.setU16(lengthAt, w.length - start);
}

function writeRdata(w: Writer, rr: ResourceRecord): void {
  switch (rr.type) {
    case TYPE.A:
      w.bytes(parseIPv4(rr.value));
      return;
    case TYPE.AAAA:
      w.bytes(parseIPv6(rr.value));
      return;
    case TYPE.NS:
    case TYPE.CNAME:
    case TYPE.PTR:
      w.name(rr.value);
      return;
    case TYPE.MX:
      w.u16(rr.preference ?? 0);
      w.name(rr.value);
      return;
    case TYPE.TXT: {
      const strings = rr.strings ?? chunkText(rr.value);
      for (const s of strings) {
        const b = utf8.encode(s);
        if (b.length > 255) throw new DnsFormatError("TXT string longer than 255 bytes");
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    }
    case TYPE.SOA: {
      const f = rr.value.trim().split(/\s+/);
      if (f.length !== 7) throw new DnsFormatError(`bad SOA data: ${rr.value}`);
      w.name(f[0]);
      w.name(f[1]);
      for (const n of f.slice(2)) w.u32(Number(n));
      return;
    }
    case TYPE.TLSA: {
      const f = rr.value.trim().split(/\s+/);
      if (f.length < 4) throw new DnsFormatError(`bad TLSA data: ${rr.value}`);
      w.u8(Number(f[0]));
      w.u8(Number(f[1]));
      w.u8(Number(f[2]));
      w.bytes(hexToBytes(f.slice(3).join("")));
      return;
    }
    default:
      w.bytes(hexToBytes(rr.value));
  }
}

/** Splits text into TXT character-strings of at most 255 bytes. */
function chunkText(text: string): string[] {
  const out: string[] = [];
  const bytes = utf8.encode(text);
  for (let i = 0; i < bytes.length; i += 255) {
    out.push(utf8Decoder.decode(bytes.subarray(i, i + 255)));
  }
  return out.length ? out : [""];
}

// ---------------------------------------------------------------- decoding

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DnsFormatError("truncated DNS message");
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }

  u32(): number {
    return this.u16() * 65536 + this.u16();
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Reads a possibly compressed name; pointers must point backwards. */
  name(): string {
    const labels: string[] = [];
    let pos = this.pos;
    let jumped = false;
    let total = 1;
    for (;;) {
      if (pos >= this.buf.length) throw new DnsFormatError("truncated domain name");
      const len = this.buf[pos];
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= this.buf.length) throw new DnsFormatError("truncated name pointer");
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1];
        if (!jumped) this.pos = pos + 2;
        // A pointer must go strictly backwards: that rules out loops.
        if (target >= pos) throw new DnsFormatError("bad name compression pointer");
        pos = target;
        jumped = true;
        continue;
      }
      if (len & 0xc0) throw new DnsFormatError("bad label type");
      if (len === 0) {
        if (!jumped) this.pos = pos + 1;
        break;
      }
      if (pos + 1 + len > this.buf.length) throw new DnsFormatError("truncated label");
      total += len + 1;
      if (total > 255) throw new DnsFormatError("domain name too long");
      labels.push(decodeLabel(this.buf.subarray(pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
    return labels.join(".");
  }
}

/** Label bytes to text; dots and odd bytes are escaped as in zone files. */
function decodeLabel(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + String(c).padStart(3, "0");
  }
  return s;
}

/** Decodes a wire-format message; throws DnsFormatError when malformed. */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  const id = r.u16();
  const word = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()];
  const flags: Flags = {
    qr: (word & 0x8000) !== 0,
    opcode: (word >> 11) & 0xf,
    aa: (word & 0x400) !== 0,
    tc: (word & 0x200) !== 0,
    rd: (word & 0x100) !== 0,
    ra: (word & 0x80) !== 0,
    ad: (word & 0x20) !== 0,
    cd: (word & 0x10) !== 0,
    rcode: word & 0xf,
  };
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  }
  const sections: ResourceRecord[][] = [[], [], []];
  let edns: Edns | undefined;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]; i++) {
      const name = r.name();
      const type = r.u16();
      const cls = r.u16();
      const ttl = r.u32();
      const rdlength = r.u16();
      r.need(rdlength);
      const end = r.pos + rdlength;
      if (type === TYPE.OPT) {
        edns = { udpSize: cls, do: (ttl & 0x8000) !== 0 };
        flags.rcode |= ((ttl >>> 24) & 0xff) << 4;
        r.pos = end;
        continue;
      }
      const rr = readRdata(r, { name, type, class: cls, ttl, value: "" }, end);
      if (r.pos !== end) throw new DnsFormatError("RDATA length mismatch");
      sections[s].push(rr);
    }
  }
  return {
    id,
    flags,
    questions,
    answers: sections[0],
    authority: sections[1],
    additional: sections[2],
    edns,
  };
}

function readRdata(r: Reader, rr: ResourceRecord, end: number): ResourceRecord {
  const length = end - r.pos;
  switch (rr.type) {
    case TYPE.A:
      if (length !== 4) throw new DnsFormatError("bad A record length");
      rr.value = Array.from(r.bytes(4)).join(".");
      break;
    case TYPE.AAAA:
      if (length !== 16) throw new DnsFormatError("bad AAAA record length");
      rr.value = formatIPv6(r.bytes(16));
      break;
    case TYPE.NS:
    case TYPE.CNAME:
    case TYPE.PTR:
      rr.value = r.name();
      break;
    case TYPE.MX:
      rr.preference = r.u16();
      rr.value = r.name();
      break;
    case TYPE.TXT: {
      const strings: string[] = [];
      while (r.pos < end) strings.push(utf8Decoder.decode(r.bytes(r.u8())));
      rr.strings = strings;
      rr.value = strings.join("");
      break;
    }
    case TYPE.SOA: {
      const parts = [r.name(), r.name()];
      for (let i = 0; i < 5; i++) parts.push(String(r.u32()));
      rr.value = parts.join(" ");
      break;
    }
    case TYPE.TLSA: {
      if (length < 3) throw new DnsFormatError("bad TLSA record length");
      const head = [r.u8(), r.u8(), r.u8()];
      rr.value = `${head.join(" ")} ${bytesToHex(r.bytes(end - r.pos))}`;
      break;
    }
    default:
      rr.value = bytesToHex(r.bytes(length));
  }
  return rr;
}

// ---------------------------------------------------------------- addresses

/** Dotted quad to 4 bytes; throws DnsFormatError when malformed. */
export function parseIPv4(text: string): Uint8Array {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new DnsFormatError(`bad IPv4 address: ${text}`);
  }
  return new Uint8Array(parts.map(Number));
}

/** IPv6 text (with ::, optional embedded IPv4) to 16 bytes. */
export function parseIPv6(text: string): Uint8Array {
  let s = text.toLowerCase();
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    // An embedded IPv4 tail becomes two hex groups.
    const v4 = parseIPv4(s.slice(lastColon + 1));
    const hi = ((v4[0] << 8) | v4[1]).toString(16);
    const lo = ((v4[2] << 8) | v4[3]).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) throw new DnsFormatError(`bad IPv6 address: ${text}`);
  const group = (h: string) => (h === "" ? [] : h.split(":"));
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  const words = [...head, ...rest];
  if (!words.every((w) => /^[0-9a-f]{1,4}$/.test(w))) {
    throw new DnsFormatError(`bad IPv6 address: ${text}`);
  }
  const fill = 8 - words.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) {
    throw new DnsFormatError(`bad IPv6 address: ${text}`);
  }
  const all = [
    ...head.map((w) => parseInt(w, 16)),
    ...new Array(halves.length === 2 ? fill : 0).fill(0),
    ...rest.map((w) => parseInt(w, 16)),
  ];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** 16 bytes to RFC 5952 text (longest zero run compressed). */
export function formatIPv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  let bestAt = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestAt < 0) return hex.join(":");
  return hex.slice(0, bestAt).join(":") + "::" + hex.slice(bestAt + bestLen).join(":");
}

function bytesToHex(b: Uint8Array): string {
  return Array.from(b, (c) => c.toString(16).padStart(2, "0")).join("");
}

function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new DnsFormatError(`bad hex data: ${hex}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
