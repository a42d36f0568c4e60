// sendmail: the Sendmail-compatible submission interface, as sendmail(1).
//
// Reads a message on standard input and queues it in the maildrop queue for
// pickup, through the same maildrop writer postdrop uses (lib/queue): the
// envelope from the command line (-f, -F, -N, -R, -V, -B, recipients or -t),
// the text cut into records as Postfix's sendmail cuts it. Invoked as mailq
// it lists the queue (-bp), as newaliases it rebuilds the alias databases
// (-bi). Exit codes follow Postfix's sendmail: 0, or 75 (EX_TEMPFAIL) on a
// fatal error, 69 (EX_UNAVAILABLE) when a needed service is down.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, FatalError, info, warn } from "../lib/log.ts";
import { type Config, configDirectory, loadConfig, setupLogging } from "../lib/config/mod.ts";
import { extractAddresses } from "../lib/address/mod.ts";
import {
  checkSubmitter,
  describe,
  gecosFullName,
  HeaderStage,
  layoutFromConfig,
  LineSplitter,
  MaildropWriter,
  MessageTooLarge,
  passwdByUid,
  QueueFileError,
  RecordType,
  type TextRecord,
} from "../lib/queue/mod.ts";
import { sendTrigger, TRIGGER_WAKEUP } from "../lib/ipc/trigger.ts";
import { flushQueue, flushQueueFile, flushSite } from "../lib/flush_client.ts";
import { listMailQueue } from "../lib/showq_client.ts";
import { launchCommand } from "../lib/daemon/launcher.ts";
import { defaultVerpDelimitersError, verpDelimitersError } from "../lib/verp.ts";
import { spawn } from "node:child_process";
import type { ProgramContext } from "../lib/program.ts";

/** sysexits(3) codes Postfix's sendmail uses. */
export const EX_UNAVAILABLE = 69;
export const EX_TEMPFAIL = 75;
export const EX_SOFTWARE = 70;

/** What the command line asked for. */
interface Request {
  mode: string;
  sender?: string;
  fullName?: string;
  recipients: string[];
  extract: boolean;
  ignoreDot: boolean;
  notify?: number;
  ret?: number;
  envid?: string;
  encoding?: string;
  verp?: string;
  /** An -X option other than -XV, refused once logging is set up. */
  unsupported?: string;
  /** Warnings about the Postfix 2.2 -V form, logged once logging is set up. */
  legacyWarnings: string[];
  verbose: number;
  configDir?: string;
  queueArg?: string;
}

/** DSN NOTIFY keywords and their bits (Postfix's dsn_mask values). */
const notifyBits: Record<string, number> = { never: 1, success: 2, failure: 4, delay: 8 };
const retBits: Record<string, number> = { full: 1, hdrs: 2 };

/** sendmail [options] [recipient ...]; also mailq and newaliases. */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name === "sendmail" ? "sendmail" : ctx.name, stderr: true });
  try {
    return await run(args, ctx);
  } catch (err) {
    if (err instanceof FatalError) return err.exitCode === 1 ? EX_TEMPFAIL : err.exitCode;
    throw err;
  }
}

async function run(args: string[], ctx: ProgramContext): Promise<number> {
  const request = parseArgs(args, ctx.name);
  const config = loadConfig({ configDir: request.configDir, program: "sendmail" });
  setupLogging(config, "sendmail", { stderr: true, verbose: request.verbose > 1 ? 1 : 0 });
  for (const text of request.legacyWarnings) warn(text);
  if (request.unsupported) fatal(`unsupported: ${request.unsupported}`);
  checkVerp(config, request);
  switch (request.mode) {
    case "m":
      return await submit(config, request, false);
    case "v":
      return await submit(config, request, true);
    case "i":
      return await newaliases(config, request);
    case "p":
      if (request.recipients.length) fatal("display queue mode requires no recipient");
      return await listMailQueue(config, "text", {
        openTable: (spec) => openTable(spec, config),
      });
    case "q":
      return await flushRequest(config, request.queueArg ?? "");
    case "d":
      fatal('daemon mode (-bd) is not supported: start the mail system with "postfix start"');
      break;
    case "s":
      return await smtpSession(config);
  }
  fatal(`unsupported: -b${request.mode}`);
}

/** fatal() with a sysexits status. */
function fatalStatus(status: number, text: string): never {
  try {
    fatal(text);
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, status);
    throw err;
  }
}

/** Postfix's sendmail flags; -q may come without an argument, so it is read by hand. */
function parseArgs(args: string[], name: string): Request {
  const request: Request = {
    mode: name === "mailq" ? "p" : name === "newaliases" ? "i" : "m",
    recipients: [],
    extract: false,
    ignoreDot: false,
    legacyWarnings: [],
    verbose: 0,
  };
  const words = legacyVerp(args.map((a) => (a === "-q" ? "-q-" : a)), request.legacyWarnings);
  let opts;
  try {
    opts = getopt(words, optionSpec);
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`sendmail: ${err.message}`);
    fatal("usage: sendmail [options]");
  }
  for (const { flag, arg = "" } of opts.options) applyOption(request, flag, arg);
  request.recipients = opts.operands;
  if (request.extract && request.mode !== "m") fatal("-t can be used only in delivery mode");
  return request;
}

function applyOption(request: Request, flag: string, arg: string): void {
  switch (flag) {
    case "B":
      if (arg.toUpperCase() === "8BITMIME") request.encoding = "8bit";
      else if (arg.toUpperCase() === "7BIT") request.encoding = "7bit";
      else fatal("-B option needs 8BITMIME or 7BIT");
      return;
    case "C":
      request.configDir = configDirFromC(arg);
      return;
    case "F":
      request.fullName = arg;
      return;
    case "I":
      request.mode = "i";
      return;
    case "N":
      request.notify = parseNotify(arg);
      return;
    case "R":
      if (arg.toLowerCase() in retBits) request.ret = retBits[arg.toLowerCase()];
      else warn("bad -R option value -- ignored");
      return;
    case "V":
      request.envid = checkEnvid(arg);
      return;
    case "X":
      // -XV[delimiters] asks for VERP (checked once main.cf is read); any
      // other -X is refused, as Postfix's sendmail does.
      if (!arg.startsWith("V")) request.unsupported ??= `-X${arg.slice(0, 1)}`;
      else request.verp = arg.slice(1);
      return;
    case "b":
      if (!"dimpsv".includes(arg) || arg.length !== 1) fatal(`unsupported: -b${arg}`);
      request.mode = arg;
      return;
    case "f":
    case "r":
      request.sender = parseSender(arg);
      return;
    case "o":
      if (arg === "i") request.ignoreDot = true;
      return;
    case "i":
      request.ignoreDot = true;
      return;
    case "q":
      if (arg.startsWith("R") && arg.length === 1) fatal("specify: -qRsitename");
      request.mode = "q";
      request.queueArg = arg === "-" ? "" : arg;
      return;
    case "t":
      request.extract = true;
      return;
    case "v":
      request.verbose++;
      return;
  }
  // -A -G -L -O -U -c -e -h -m -n -p -x: accepted and ignored, as Postfix does.
}

/** Postfix's sendmail options (getopt form). */
const optionSpec = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx";

/** The options of Postfix's sendmail that take an argument. */
const optionsWithArgument = new Set("ABCFLNORVXbefhopqr");

/**
 * Postfix 2.2 and earlier asked for VERP with -V; -V is now the DSN
 * envelope id. As Postfix's sendmail, an option -V whose argument has two
 * characters (attached, or the next word) still means VERP: the word
 * becomes -XV (with the attached characters), with a warning (added to
 * `warnings`, logged once main.cf is read, as the reference logs it). A
 * separate argument word stays where it is, so the options end there.
 */
function legacyVerp(words: string[], warnings: string[]): string[] {
  // Postfix's scan is a first getopt pass: its complaints appear twice.
  try {
    getopt(words, optionSpec);
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`sendmail: ${err.message}`);
  }
  const out = [...words];
  for (let i = 0; i < out.length; i++) {
    const word = out[i];
    if (word === "--" || word.length < 2 || word[0] !== "-") break;
    for (let j = 1; j < word.length; j++) {
      if (!optionsWithArgument.has(word[j])) continue;
      const attached = word.slice(j + 1);
      const arg = attached || (out[i + 1] ?? "");
      if (!attached) i++;
      if (word[j] === "V" && j === 1 && arg.length === 2 && (attached || i < out.length)) {
        warnings.push(
          `option ${word} is deprecated with Postfix 2.3; specify -X${word.slice(1)} instead`,
        );
        out[attached ? i : i - 1] = `-X${word.slice(1)}`;
        if (!attached) i--;
      }
      break;
    }
  }
  return out;
}

/**
 * The VERP request against main.cf: default_verp_delimiters must be valid
 * (Postfix checks it in every program), explicit delimiters must be two
 * characters of verp_delimiter_filter; -XV alone takes the default.
 */
function checkVerp(config: Config, request: Request): void {
  const error = defaultVerpDelimitersError(config);
  if (error) fatal(error);
  if (request.verp === undefined) return;
  if (request.verp === "") request.verp = config.get("default_verp_delimiters");
  const filter = config.get("verp_delimiter_filter");
  if (verpDelimitersError(request.verp, filter)) {
    fatal(`-V requires two characters from ${filter}`);
  }
}

/** -C names main.cf or its folder. */
function configDirFromC(arg: string): string {
  try {
    if (Deno.statSync(arg).isFile) return arg.slice(0, Math.max(arg.lastIndexOf("/"), 1));
  } catch {
    // A missing path is reported when main.cf is opened.
  }
  return configDirectory(arg);
}

function parseNotify(arg: string): number | undefined {
  let bits = 0;
  for (const word of arg.split(",")) {
    const bit = notifyBits[word.trim().toLowerCase()];
    if (bit === undefined) {
      warn(`unknown DSN NOTIFY command value "${word}" in "${arg}"`);
      warn("bad -N option value -- ignored");
      return undefined;
    }
    bits |= bit;
  }
  if ((bits & notifyBits.never) && bits !== notifyBits.never) {
    warn("bad -N option value -- ignored");
    return undefined;
  }
  return bits;
}

/** RFC 3461 ENVID: printable ASCII, at most 100 characters. */
function checkEnvid(arg: string): string | undefined {
  if (arg.length > 100) {
    warn("too long -V option value -- ignored");
    return undefined;
  }
  if (!/^[\x21-\x7e]+$/.test(arg)) {
    warn("bad syntax in -V option value -- ignored");
    return undefined;
  }
  return arg;
}

/** -f: the address without angle brackets; `<>` is the null sender. */
function parseSender(arg: string): string {
  const trimmed = arg.trim();
  const addresses = extractAddresses(trimmed);
  if (trimmed === "" || trimmed === "<>") return "";
  if (addresses.length !== 1 || /\s/.test(trimmed.replace(/^<|>$/g, ""))) {
    warn(`-f option specified malformed sender: ${arg}`);
    return trimmed.split(/\s+/)[0].replace(/^<|>$/g, "");
  }
  return addresses[0];
}

/** The submitting user: login name, full name, and `sender(uid)` for diagnostics. */
function submitter(
  request: Request,
): { sender: string; fullName: string; who: string; uid: number } {
  const uid = Deno.uid() ?? 0;
  const entry = passwdByUid(uid);
  if (!entry && request.sender === undefined) {
    fatal(`no login name found for user ID ${uid}`);
  }
  const sender = request.sender ?? entry!.name;
  const fullName = request.fullName ?? Deno.env.get("NAME") ?? (entry ? gecosFullName(entry) : "");
  return { sender, fullName, who: `${sender}(${uid})`, uid };
}

/** Queues the message (or, for -bv, an address-verification probe) in maildrop. */
async function submit(config: Config, request: Request, probe: boolean): Promise<number> {
  const user = submitter(request);
  if (request.verp !== undefined && user.sender === "") {
    fatal(`${user.who}: -V option requires non-null sender address`);
  }
  await checkSubmitter(
    config.list("authorized_submit_users"),
    user.uid,
    (spec) => openTable(spec, config),
  );
  const recipients = request.recipients.flatMap((word) => {
    const found = extractAddresses(word);
    return found.length ? found : [word];
  });
  if (!recipients.length && !request.extract) {
    fatal(
      `${user.who}: Recipient addresses must be specified on the command line or via the -t option`,
    );
  }
  const layout = layoutFromConfig(config);
  let writer: MaildropWriter;
  try {
    writer = new MaildropWriter(layout, {
      longIds: config.bool("enable_long_queue_ids"),
      sizeLimit: config.int("message_size_limit"),
    });
  } catch (err) {
    if (err instanceof QueueFileError) fatal(`${user.who}: ${err.message}`);
    throw err;
  }
  try {
    writeEnvelope(writer, request, user, recipients, probe);
    writer.add(RecordType.MESG);
    const extracted = probe
      ? writeProbeText(writer, user.sender, request.recipients)
      : await copyMessage(writer, config, request, user.who);
    writer.add(RecordType.XTRA);
    for (const rcpt of extracted) writer.add(RecordType.RCPT, rcpt);
    if (request.extract && !recipients.length && !extracted.length) {
      fatal(`${user.who}: No recipient addresses found in message header`);
    }
    writer.add(RecordType.END);
    writer.commit();
  } catch (err) {
    writer.abandon();
    if (err instanceof MessageTooLarge) {
      warn(`uid=${user.uid}: File too large`);
      fatal(`${user.who}: message file too big`);
    }
    if (err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.Interrupted) {
      fatal(`${user.who}: error reading input: ${describe(err)}`);
    }
    throw err;
  }
  if (request.verbose > 1) info(`queued as ${writer.id}`);
  await wakePickup(layout.queueDirectory, config);
  if (probe || request.verbose > 0) {
    console.log(`Mail Delivery Status Report will be mailed to <${user.sender}>.`);
  }
  return 0;
}

function writeEnvelope(
  writer: MaildropWriter,
  request: Request,
  user: { sender: string; fullName: string },
  recipients: string[],
  probe: boolean,
): void {
  if (request.envid !== undefined) writer.add(RecordType.ATTR, `envelope_id=${request.envid}`);
  if (request.ret !== undefined) writer.add(RecordType.ATTR, `ret_flags=${request.ret}`);
  writer.add(RecordType.ATTR, "rewrite_context=local");
  writer.add(RecordType.FULL, user.fullName);
  writer.add(RecordType.FROM, user.sender);
  if (request.encoding) writer.add(RecordType.ATTR, `encoding=${request.encoding}`);
  if (request.verp !== undefined) writer.add(RecordType.VERP, request.verp);
  // Postfix's trace flags: 512 verify (-bv), 1024 record a delivery report (-v).
  if (probe) writer.add(RecordType.ATTR, "trace_flags=512");
  else if (request.verbose > 0) writer.add(RecordType.ATTR, "trace_flags=1024");
  for (const rcpt of recipients) {
    if (request.notify !== undefined) writer.add(RecordType.ATTR, `notify_flags=${request.notify}`);
    writer.add(RecordType.RCPT, rcpt);
  }
}

/** The -bv probe text Postfix's sendmail writes: From, Subject: probe, To folded per argument. */
function writeProbeText(writer: MaildropWriter, sender: string, args: string[]): string[] {
  const enc = new TextEncoder();
  writer.addText("N", enc.encode(`From: ${sender}`));
  writer.addText("N", enc.encode("Subject: probe"));
  if (args.length) {
    writer.addText("L", enc.encode("To:"));
    args.forEach((arg, i) => {
      writer.addText("N", enc.encode(`\t${arg}${i + 1 < args.length ? "," : ""}`));
    });
  }
  return [];
}

/** Streams standard input into text records; returns the recipients -t found. */
async function copyMessage(
  writer: MaildropWriter,
  config: Config,
  request: Request,
  who: string,
): Promise<string[]> {
  const emit = (r: TextRecord) => writer.addText(r.type, r.data);
  const headers = new HeaderStage(
    { extract: request.extract, headerLimit: config.int("header_size_limit") },
    emit,
  );
  const fix = config.get("sendmail_fix_line_endings");
  const splitter = new LineSplitter({
    lineLimit: config.int("line_length_limit"),
    fixLineEndings: fix === "strict" || fix === "never" ? fix : "always",
    ignoreDot: request.ignoreDot,
  }, (r) => headers.push(r));
  // Deno.stdin.read() directly: a web stream costs several milliseconds to set up.
  const buf = new Uint8Array(1 << 16);
  try {
    while (!splitter.stopped) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      splitter.push(buf.subarray(0, n));
    }
  } catch (err) {
    if (err instanceof MessageTooLarge) throw err;
    fatal(`${who}: error reading input: ${describe(err)}`);
  }
  splitter.end();
  headers.end();
  return headers.recipients;
}

/** A `W` to public/pickup (pickup_service_name); a mail system that is down is not an error. */
async function wakePickup(queueDirectory: string, config: Config): Promise<void> {
  const service = config.get("pickup_service_name") || "pickup";
  try {
    await sendTrigger(
      `${queueDirectory}/public/${service}`,
      TRIGGER_WAKEUP,
      1000 * config.time("trigger_timeout"),
    );
  } catch {
    // As in Postfix: the file waits in maildrop for pickup's next scan.
  }
}

/**
 * -bs: an SMTP session on standard input and output, by running
 * `smtpd -S` from daemon_directory (or the launcher), as Postfix's sendmail
 * does; the child inherits standard input and output.
 */
async function smtpSession(config: Config): Promise<number> {
  const cmd = launchCommand(config, "smtpd", ["-S"]);
  const child = spawn(cmd.file, cmd.args, { argv0: cmd.argv0, stdio: "inherit" });
  return await new Promise<number>((resolve) => {
    child.on("error", (err) => {
      try {
        fatalStatus(EX_UNAVAILABLE, `execvp ${cmd.path}: ${err.message}`);
      } catch {
        resolve(EX_UNAVAILABLE);
      }
    });
    child.on("exit", (code) => resolve(code ?? EX_SOFTWARE));
  });
}

/**
 * -q, -qIqueueid, -qRsite: what Postfix's sendmail runs postqueue for
 * (-f, -i, -s); -qinterval is ignored and -qS is not implemented, as in Postfix.
 */
async function flushRequest(config: Config, arg: string): Promise<number> {
  if (arg === "" || /^\d+[smhdw]?$/.test(arg)) return await flushQueue(config);
  if (arg.startsWith("I")) return await flushQueueFile(config, arg.slice(1));
  if (arg.startsWith("R")) return await flushSite(config, arg.slice(1));
  if (arg.startsWith("S")) fatal("-qS is not implemented");
  fatal(`bad -q option: -q${arg}`);
}

/** -bi / newaliases: rebuild the alias databases (maps/). */
async function newaliases(config: Config, request: Request): Promise<number> {
  if (request.recipients.length) fatal("alias initialization mode requires no recipient");
  const maps = await import("../maps/mod.ts");
  try {
    await maps.rebuildAliasDatabases(config);
  } catch (err) {
    if (err instanceof maps.DictError) fatal(err.message);
    throw err;
  }
  return 0;
}

/** Opens a lookup table (maps/ is loaded only when a list names a table). */
async function openTable(spec: string, config: Config) {
  return (await import("../maps/mod.ts")).openMap(spec, { config });
}
