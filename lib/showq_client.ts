// The showq service protocol and the queue listing it feeds: mailq's text
// format (postqueue -p, sendmail -bp) and the JSON format (postqueue -j),
// as Postfix 3.7 prints them.
//
// The protocol is Postfix's own (its postqueue reads Posthorn's showq and
// the other way round): attribute lists of `name NUL value NUL` pairs, each
// ended by a NUL. The server opens with {protocol=mail_queue_list_protocol};
// then each message is one list, queue_name, queue_id, time, size,
// forced_expire and sender followed by a recipient and reason pair per
// recipient; an empty list ends the report. The client sends nothing and
// does the formatting. Names repeat within a list, which lib/ipc/attr.ts's
// maps cannot hold, hence the ordered-pair reader here.

import { type Config } from "./config/mod.ts";
import { launchCommand } from "./daemon/launcher.ts";
import { fatal, warn } from "./log.ts";
import { describe } from "./queue/file.ts";
import { FatalError } from "./log.ts";
import { isAuthorizedSubmitter, submitterLogin, type TableOpener } from "./queue/submitter.ts";

/** The protocol name showq announces. */
export const showqProtocol = "mail_queue_list_protocol";

/** One recipient of a queued message and why it was deferred ("" when it was not). */
export interface QueuedRecipient {
  address: string;
  reason: string;
}

/** One queued message as showq reports it. */
export interface QueuedMessage {
  queueName: string;
  queueId: string;
  /** Arrival time, seconds since the epoch. */
  arrivalTime: number;
  /** Message size in bytes (the content size cleanup recorded; the file size in maildrop). */
  size: number;
  /** postsuper -e/-f was applied. */
  forcedExpire: boolean;
  /** The envelope sender; "" for the null sender. */
  sender: string;
  recipients: QueuedRecipient[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One attribute list from ordered pairs (names may repeat). */
function encodePairs(pairs: [string, string | number][]): Uint8Array {
  let text = "";
  for (const [name, value] of pairs) text += `${name}\0${String(value).replaceAll("\0", "")}\0`;
  return encoder.encode(text + "\0");
}

/** The list a showq server sends first. */
export function showqGreeting(): Uint8Array {
  return encodePairs([["protocol", showqProtocol]]);
}

/** The empty list that ends a report. */
export function showqEnd(): Uint8Array {
  return new Uint8Array([0]);
}

/** The list that carries one message (the null sender is sent as MAILER-DAEMON, as Postfix). */
export function encodeQueuedMessage(msg: QueuedMessage): Uint8Array {
  const pairs: [string, string | number][] = [
    ["queue_name", msg.queueName],
    ["queue_id", msg.queueId],
    ["time", msg.arrivalTime],
    ["size", msg.size],
    ["forced_expire", msg.forcedExpire ? 1 : 0],
    ["sender", senderText(msg.sender)],
  ];
  for (const r of msg.recipients) pairs.push(["recipient", r.address], ["reason", r.reason]);
  return encodePairs(pairs);
}

/** A showq stream that breaks the protocol. */
export class ShowqProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShowqProtocolError";
  }
}

/**
 * Turns a showq stream back into messages, one push() per chunk read. It
 * keeps an offset into its buffer and compacts only between chunks, so a
 * large report costs time in proportion to its size.
 */
export class ShowqDecoder {
  private buffer = new Uint8Array(0);
  private state: "greeting" | "messages" | "done" = "greeting";

  /** Feeds a chunk; returns the messages it completes. */
  push(chunk: Uint8Array): QueuedMessage[] {
    const merged = new Uint8Array(this.buffer.length + chunk.length);
    merged.set(this.buffer);
    merged.set(chunk, this.buffer.length);
    const done: QueuedMessage[] = [];
    let at = 0;
    for (;;) {
      const list = readList(merged, at);
      if (!list) break;
      at = list.next;
      this.take(list.pairs, done);
    }
    this.buffer = merged.slice(at);
    return done;
  }

  private take(pairs: [string, string][], done: QueuedMessage[]): void {
    if (this.state === "done") throw new ShowqProtocolError("data after the end of the report");
    if (this.state === "greeting") {
      if (pairs.length !== 1 || pairs[0][0] !== "protocol" || pairs[0][1] !== showqProtocol) {
        throw new ShowqProtocolError(`unexpected greeting, not ${showqProtocol}`);
      }
      this.state = "messages";
    } else if (pairs.length === 0) {
      this.state = "done";
    } else {
      done.push(messageFrom(pairs));
    }
  }

  /** Throws unless the stream ended where the report ends. */
  end(): void {
    if (this.state !== "done" || this.buffer.length) {
      throw new ShowqProtocolError("premature end of the queue listing");
    }
  }
}

/** Reads one list at `at`: its pairs and where the next list starts; null when incomplete. */
function readList(buf: Uint8Array, at: number): { pairs: [string, string][]; next: number } | null {
  const pairs: [string, string][] = [];
  for (;;) {
    const nameEnd = buf.indexOf(0, at);
    if (nameEnd < 0) return null;
    if (nameEnd === at) return { pairs, next: at + 1 };
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return null;
    pairs.push([
      decoder.decode(buf.subarray(at, nameEnd)),
      decoder.decode(buf.subarray(nameEnd + 1, valueEnd)),
    ]);
    at = valueEnd + 1;
  }
}

const headNames = ["queue_name", "queue_id", "time", "size", "forced_expire", "sender"];

/** A message from its list: the six head attributes in order, then recipient/reason pairs. */
function messageFrom(pairs: [string, string][]): QueuedMessage {
  for (let i = 0; i < headNames.length; i++) {
    if (pairs[i]?.[0] !== headNames[i]) {
      throw new ShowqProtocolError(`expected attribute ${headNames[i]}`);
    }
  }
  const value = (i: number) => pairs[i][1];
  const msg: QueuedMessage = {
    queueName: value(0),
    queueId: value(1),
    arrivalTime: Number(value(2)),
    size: Number(value(3)),
    forcedExpire: value(4) !== "0",
    sender: value(5),
    recipients: [],
  };
  for (let i = headNames.length; i < pairs.length; i += 2) {
    if (pairs[i][0] !== "recipient" || pairs[i + 1]?.[0] !== "reason") {
      throw new ShowqProtocolError("expected recipient and reason");
    }
    msg.recipients.push({ address: pairs[i][1], reason: pairs[i + 1][1] });
  }
  return msg;
}

const dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const monthNames = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

/** ctime(3) without the year, in local time: `Tue Nov 24 15:53:38`. */
function arrivalText(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${dayNames[d.getDay()]} ${monthNames[d.getMonth()]} ${String(d.getDate()).padStart(2)} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The sender as listings show it: the null sender is MAILER-DAEMON. */
function senderText(sender: string): string {
  return sender === "" ? "MAILER-DAEMON" : sender;
}

/** The queue-status marks after the id: `*` active, `!` hold, `#` forced to expire. */
function statusMarks(msg: QueuedMessage): string {
  return (msg.queueName === "active" ? "*" : msg.queueName === "hold" ? "!" : "") +
    (msg.forcedExpire ? "#" : "");
}

/** The column header of the text listing. */
export const listingHeader = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------";

/**
 * One message in mailq's format: the id (with its marks) padded to 11
 * columns, the size in 8, the arrival time, the sender; then each recipient
 * indented 41 columns, under its deferral reason in parentheses right-aligned
 * to column 78 whenever the reason changes (to "reason unavailable" when a
 * recipient without one follows one with one); then an empty line.
 */
export function formatMessageText(msg: QueuedMessage): string {
  let out = `${(msg.queueId + statusMarks(msg)).padEnd(11)}${String(msg.size).padStart(8)} ` +
    `${arrivalText(msg.arrivalTime)}  ${senderText(msg.sender)}\n`;
  let lastReason = "";
  for (const rcpt of msg.recipients) {
    // A change of reason is shown, back to none too (Postfix: "reason unavailable").
    if (rcpt.reason !== lastReason) {
      out += `(${rcpt.reason || "reason unavailable"})`.padStart(78) + "\n";
    }
    lastReason = rcpt.reason;
    out += " ".repeat(41) + rcpt.address + "\n";
  }
  return out + "\n";
}

/** The closing line of the text listing: whole kilobytes, rounded down. */
export function formatTrailer(bytes: number, count: number): string {
  return `-- ${Math.floor(bytes / 1024)} Kbytes in ${count} Request${count === 1 ? "" : "s"}.\n`;
}

/** A JSON string as Postfix writes it: `"`, `\` and control characters escaped. */
function jsonString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (code < 0x20 || code === 0x7f) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

/** One message as one line of JSON (postqueue -j), keys in Postfix's order. */
export function formatMessageJson(msg: QueuedMessage): string {
  const recipients = msg.recipients.map((r) =>
    `{"address": ${jsonString(r.address)}` +
    (r.reason ? `, "delay_reason": ${jsonString(r.reason)}` : "") + "}"
  );
  return `{"queue_name": ${jsonString(msg.queueName)}, "queue_id": ${jsonString(msg.queueId)}, ` +
    `"arrival_time": ${msg.arrivalTime}, "message_size": ${msg.size}, ` +
    `"forced_expire": ${msg.forcedExpire}, "sender": ${jsonString(senderText(msg.sender))}, ` +
    `"recipients": [${recipients.join(", ")}]}\n`;
}

/** Output formats: mailq's text or one JSON object per message. */
export type ListingFormat = "text" | "json";

/** Writes every message of a showq stream to `out` in `format`, as it arrives. */
export async function printListing(
  source: AsyncIterable<Uint8Array>,
  format: ListingFormat,
  out: (text: string) => Promise<void>,
): Promise<void> {
  const decoder = new ShowqDecoder();
  let count = 0;
  let bytes = 0;
  for await (const chunk of source) {
    let text = "";
    for (const msg of decoder.push(chunk)) {
      if (format === "json") {
        text += formatMessageJson(msg);
      } else {
        if (count === 0) text += listingHeader + "\n";
        text += formatMessageText(msg);
      }
      count++;
      bytes += msg.size;
    }
    if (text) await out(text);
  }
  decoder.end();
  if (format === "text") {
    await out(count === 0 ? "Mail queue is empty\n" : formatTrailer(bytes, count));
  }
}

/** Writes text to standard output. */
async function writeStdout(text: string): Promise<void> {
  const data = new TextEncoder().encode(text);
  let at = 0;
  try {
    while (at < data.length) at += await Deno.stdout.write(data.subarray(at));
  } catch (err) {
    // The reader went away (mailq | head): stop quietly, as SIGPIPE would.
    if (err instanceof Deno.errors.BrokenPipe) throw new FatalError("standard output closed", 141);
    throw err;
  }
}

/** Reads a node-style or Deno connection as chunks. */
async function* connectionChunks(conn: Deno.UnixConn): AsyncIterable<Uint8Array> {
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    yield buf.slice(0, n);
  }
}

/** Whether this user may read the queue directly when showq is down (Postfix: the super-user). */
function mayReadQueueDirectly(config: Config): boolean {
  const uid = Deno.uid() ?? 0;
  // A self-contained instance run by an ordinary user: that user owns the queue.
  return uid === 0 || ownsQueue(config, uid);
}

/** Runs the showq program stand-alone (-S) and reads its report from its standard output. */
async function* standaloneChunks(config: Config, configDir: string): AsyncIterable<Uint8Array> {
  const cmd = launchCommand(config, config.get("showq_service_name") || "showq", ["-S"]);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd.file, {
      args: cmd.args,
      env: { MAIL_CONFIG: configDir },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    fatalStatus(`execvp ${cmd.file}: ${describe(err)}`, 71);
  }
  for await (const chunk of child.stdout) yield chunk;
  const status = await child.status;
  if (!status.success) fatalStatus(`Error running ${cmd.path}`, 70);
}

/** sysexits EX_NOPERM. */
const exNoPerm = 77;

/**
 * Enforces a user list such as authorized_mailq_users or
 * authorized_flush_users (Postfix's match list: names, type:table, `!`)
 * for the invoking user; the super-user, and the owner of a self-contained
 * instance's queue, are always allowed. `action` completes "is not allowed
 * to ...". Without `openTable` a list that names a table denies.
 */
export async function checkQueueUser(
  config: Config,
  parameter: string,
  action: string,
  openTable?: TableOpener,
): Promise<void> {
  const uid = Deno.uid() ?? 0;
  if (uid === 0 || ownsQueue(config, uid)) return;
  const login = submitterLogin(uid);
  const opener: TableOpener = openTable ??
    (() => Promise.reject(new Error("no table support in this program")));
  let allowed: boolean;
  try {
    allowed = await isAuthorizedSubmitter(config.list(parameter), login, opener);
  } catch (err) {
    fatalStatus(`${parameter}: ${(err as Error).message}`, exNoPerm);
  }
  if (!allowed) fatalStatus(`User ${login}(${uid}) is not allowed to ${action}`, exNoPerm);
}

function ownsQueue(config: Config, uid: number): boolean {
  try {
    return Deno.statSync(config.get("queue_directory")).uid === uid;
  } catch {
    return false;
  }
}

/** Options for listMailQueue(). */
export interface ListOptions {
  /** Where the listing goes (standard output by default). */
  out?: (text: string) => Promise<void>;
  /** Opens a lookup table named in authorized_mailq_users (maps/ openMap). */
  openTable?: TableOpener;
}

/**
 * Lists the mail queue on standard output, as postqueue -p (text) or -j
 * (json) and sendmail -bp (mailq) do: checks authorized_mailq_users, then
 * asks the showq service, or, when the mail system is down, runs showq
 * stand-alone for a user allowed to read the queue (with Postfix's
 * warning). Returns the exit status; errors are fatal with Postfix's words.
 */
export async function listMailQueue(
  config: Config,
  format: ListingFormat,
  options: ListOptions = {},
): Promise<number> {
  await checkQueueUser(config, "authorized_mailq_users", "view the mail queue", options.openTable);
  const out = options.out ?? writeStdout;
  const mailName = config.get("mail_name") || "Postfix";
  const service = config.get("showq_service_name") || "showq";
  const path = `${config.get("queue_directory")}/public/${service}`;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    const why = `Connect to the ${mailName} ${service} service: ${describe(err)}`;
    if (err instanceof Deno.errors.PermissionDenied) fatalStatus(why, 70);
    if (!mayReadQueueDirectly(config)) {
      fatalStatus("Queue report unavailable - mail system is down", 69);
    }
    warn(`Mail system is down -- accessing queue directly (${why})`);
    await checkedListing(standaloneChunks(config, config.configDir), format, out);
    return 0;
  }
  try {
    await checkedListing(connectionChunks(conn), format, out);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server already.
    }
  }
  return 0;
}

/** printListing(), with a broken stream fatal (EX_TEMPFAIL, 75). */
async function checkedListing(
  source: AsyncIterable<Uint8Array>,
  format: ListingFormat,
  out: (text: string) => Promise<void>,
): Promise<void> {
  try {
    await printListing(source, format, out);
  } catch (err) {
    if (err instanceof ShowqProtocolError) fatalStatus(`showq service: ${err.message}`, 75);
    throw err;
  }
}

/** msg_fatal_status: the fatal line, and exit with `status` (a sysexits code). */
function fatalStatus(text: string, status: number): never {
  try {
    fatal(text);
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, status);
    throw err;
  }
}
