// postcat: show queue file contents, as postcat(1).
//
// Prints the envelope, header and body records of Postfix queue files (files
// named on the command line, queue ids with -q, or standard input) in human-
// readable form. It reads Posthorn's queue files and Postfix's alike: both
// use the same record format (lib/queue/record.ts).

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, warn } from "../lib/log.ts";
import { configDirectory, loadConfig, setupLogging } from "../lib/config/mod.ts";
import {
  decodeRecordAt,
  isHeaderStart,
  layoutFromConfig,
  pointerTarget,
  queueFilePath,
  type QueueLayout,
  RecordError,
  recordTypeName,
  relativeQueueFilePath,
  searchOrder,
} from "../lib/queue/mod.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage = "usage: postcat [-b (body text)] [-c config_dir] [-d (decimal record type)] " +
  "[-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]";

/** What to print, from the command line. */
interface PrintFlags {
  body: boolean;
  header: boolean;
  envelope: boolean;
  offsets: boolean;
  decimal: boolean;
  raw: boolean;
  verbose: number;
  start?: number;
}

/** postcat [-bdehoqrv] [-c config_dir] [-s offset] [files...] */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  let opts;
  try {
    opts = getopt(args, "bc:dehoqrs:v");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  const flags: PrintFlags = {
    body: false,
    header: false,
    envelope: false,
    offsets: false,
    decimal: false,
    raw: false,
    verbose: 0,
  };
  let configDir: string | undefined;
  let searchQueue = false;
  for (const { flag, arg } of opts.options) {
    if (flag === "b") flags.body = true;
    else if (flag === "h") flags.header = true;
    else if (flag === "e") flags.envelope = true;
    else if (flag === "o") flags.offsets = true;
    else if (flag === "d") flags.decimal = true;
    else if (flag === "r") flags.raw = true;
    else if (flag === "v") flags.verbose++;
    else if (flag === "q") searchQueue = true;
    else if (flag === "c") configDir = arg;
    else if (flag === "s") flags.start = parseOffset(arg!);
  }
  if (!flags.body && !flags.header && !flags.envelope) {
    flags.body = flags.header = flags.envelope = true;
  }
  const config = loadConfig({ configDir: configDirectory(configDir), program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose: flags.verbose });
  const out = new Output();
  try {
    if (searchQueue && opts.operands.length > 0) {
      const layout = layoutFromConfig(config);
      for (const id of opts.operands) {
        const found = findInQueue(layout, id);
        if (!found) fatal(`open queue file ${id}: No such file or directory`);
        showFile(found.data, found.name, flags, out);
      }
    } else if (opts.operands.length === 0) {
      const data = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
      showFile(data, "stdin", flags, out);
    } else {
      for (const path of opts.operands) showFile(readOrDie(path), path, flags, out);
    }
  } finally {
    out.flush();
  }
  return 0;
}

function parseOffset(text: string): number {
  if (!/^\d+$/.test(text)) fatal(`bad offset: ${text}`);
  return parseInt(text, 10);
}

function readOrDie(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    fatal(`open ${path}: ${describeErr(err)}`);
  }
}

/** Searches the queues in postcat's order; the name is relative to queue_directory. */
function findInQueue(layout: QueueLayout, id: string): { data: Uint8Array; name: string } | null {
  if (id.includes("/") || id === "." || id === "..") return null;
  for (const queue of searchOrder) {
    try {
      const data = Deno.readFileSync(queueFilePath(layout, queue, id));
      return { data, name: relativeQueueFilePath(layout, queue, id) };
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        fatal(`open queue file ${id}: ${describeErr(err)}`);
      }
    }
  }
  return null;
}

function describeErr(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "Is a directory";
  return err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : String(err);
}

/** Buffered binary standard output: record data goes out byte for byte. */
class Output {
  private parts: Uint8Array[] = [];
  private size = 0;
  private encoder = new TextEncoder();

  text(s: string): void {
    this.bytes(this.encoder.encode(s));
  }

  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
    if (this.size > 1 << 16) this.flush();
  }

  flush(): void {
    for (const part of this.parts) {
      let at = 0;
      while (at < part.length) at += Deno.stdout.writeSync(part.subarray(at));
    }
    this.parts = [];
    this.size = 0;
  }
}

type State = "envelope" | "header" | "body" | "extracted";

/** C or T first: anything else is not a queue file (Postfix checks before printing). */
function looksLikeQueueFile(data: Uint8Array): boolean {
  return data.length > 0 && (data[0] === 0x43 || data[0] === 0x54);
}

/** Prints one queue file. */
function showFile(data: Uint8Array, name: string, flags: PrintFlags, out: Output): void {
  const start = flags.start ?? 0;
  if (flags.start === undefined) {
    if (!looksLikeQueueFile(data)) {
      warn(`${name}: input is not a valid queue file`);
      return;
    }
    if (flags.envelope) out.text(`*** ENVELOPE RECORDS ${name} ***\n`);
  }
  // postcat -r stops following pointers only in verbose mode, as the reference does.
  const followPointers = !(flags.raw && flags.verbose > 0);
  let state: State = "envelope";
  let at = start;
  let continued = false;
  for (;;) {
    const readOffset = at;
    let got;
    try {
      got = readNext(data, at, followPointers, flags.verbose > 0);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      out.flush();
      warn(`${name}: ${err.message}`);
      fatal("record read error");
    }
    if (!got) return;
    at = got.next;
    const { type, data: body } = got.record;
    const prefix = linePrefix(flags, readOffset, type);
    if (type === "E") {
      if (state !== "extracted") warn(`${name}: out-of-order message end marker`);
      if (flags.envelope) out.text(`${prefix}*** MESSAGE FILE END ${name} ***\n`);
      // Raw mode shows what lies past the end record too (pointer targets).
      if (!followPointers) continue;
      return;
    }
    if (type === "M") {
      if (state !== "envelope") warn(`${name}: out-of-order message content marker`);
      if (flags.envelope) out.text(`${prefix}*** MESSAGE CONTENTS ${name} ***\n`);
      state = "header";
      continued = false;
      continue;
    }
    if (type === "X") {
      if (state !== "header" && state !== "body") {
        warn(`${name}: out-of-order extracted segment marker`);
      }
      if (flags.envelope) out.text(`${prefix}*** HEADER EXTRACTED ${name} ***\n`);
      state = "extracted";
      continue;
    }
    if ((state === "header" || state === "body") && (type === "N" || type === "L")) {
      if (state === "header" && !continued && !isHeaderStart(body) && !startsWithBlank(body)) {
        state = "body";
      }
      continued = type === "L";
      const wanted = state === "header" ? flags.header : flags.body;
      if (wanted) printText(out, prefix, type, body, flags.verbose > 0, flags.offsets);
      continue;
    }
    if (!flags.envelope) continue;
    printEnvelopeRecord(out, prefix, type, body, flags, state);
  }
}

/**
 * The next record. Following pointers, a p record moves the read position
 * and a w record is skipped; verbose output still shows both, as the
 * reference does.
 */
function readNext(
  data: Uint8Array,
  at: number,
  followPointers: boolean,
  showHidden: boolean,
): { record: { type: string; data: Uint8Array }; next: number } | null {
  for (let hops = 0;; hops++) {
    const got = decodeRecordAt(data, at);
    if (!got) return null;
    if (!followPointers) return got;
    if (hops > data.length) throw new RecordError("pointer loop");
    const { type } = got.record;
    if (type !== "w" && type !== "p") return got;
    at = type === "p" ? (pointerTarget(got.record) || got.next) : got.next;
    if (showHidden) return { record: got.record, next: at };
  }
}

function startsWithBlank(body: Uint8Array): boolean {
  return body.length > 0 && (body[0] === 32 || body[0] === 9);
}

/** `-o` offset in 9 columns, `-d` decimal type in 3, each followed by a space. */
function linePrefix(flags: PrintFlags, offset: number, type: string): string {
  let prefix = "";
  if (flags.offsets) prefix += `${String(offset).padStart(9)} `;
  if (flags.decimal) prefix += `${String(type.charCodeAt(0)).padStart(3)} `;
  return prefix;
}

/**
 * A content record. An L fragment runs on into the next record, unless each
 * record is shown on its own line (verbose, offsets).
 */
function printText(
  out: Output,
  prefix: string,
  type: string,
  body: Uint8Array,
  verbose: boolean,
  offsets: boolean,
): void {
  out.text(prefix);
  if (verbose) out.text(`${recordTypeName(type, true)}: `);
  out.bytes(body);
  if (type === "N" || verbose || offsets) out.text("\n");
}

const latin1 = new TextDecoder("latin1");

function printEnvelopeRecord(
  out: Output,
  prefix: string,
  type: string,
  body: Uint8Array,
  flags: PrintFlags,
  state: State,
): void {
  out.text(prefix);
  switch (type) {
    case "T":
    case "W":
      out.text(`${recordTypeName(type)}: ${asctime(leadingNumber(body))}\n`);
      return;
    case "N":
    case "L":
      if (type === "N" && state === "envelope") {
        if (flags.verbose > 0) out.text(`${recordTypeName("N")}: `);
        out.bytes(body);
        out.text("\n");
        return;
      }
      break;
    case "A": {
      const text = latin1.decode(body);
      const eq = text.indexOf("=");
      if (eq < 0) {
        warn(`malformed attribute: missing '=' after attribute name: ${text}`);
        return;
      }
      const attr = text.slice(0, eq);
      if (attr === "create_time") {
        out.text(`create_time: ${asctime(leadingNumber(body.subarray(eq + 1)))}\n`);
        return;
      }
      out.text(`${recordTypeName("A")}: `);
      out.bytes(cString(body));
      out.text("\n");
      return;
    }
  }
  out.text(`${recordTypeName(type)}: `);
  out.bytes(cString(body));
  out.text("\n");
}

/** Envelope data up to the first NUL: the reference prints these fields as C strings. */
function cString(body: Uint8Array): Uint8Array {
  const nul = body.indexOf(0);
  return nul < 0 ? body : body.subarray(0, nul);
}

/** atol(): the leading decimal number of the data, 0 when there is none. */
function leadingNumber(body: Uint8Array): number {
  const m = /^\s*([+-]?\d+)/.exec(latin1.decode(body.subarray(0, 40)));
  return m ? parseInt(m[1], 10) : 0;
}

const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** ctime(3) without the newline, in local time: `Tue Nov 24 15:24:19 2026`. */
export function asctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2)} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}
