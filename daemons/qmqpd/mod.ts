// qmqpd: the QMQP server, as Postfix's qmqpd(8).
//
// One message per connection: a netstring holding the message netstring,
// the sender netstring and one netstring per recipient. Only clients on
// qmqpd_authorized_clients may use it. The message goes through cleanup
// (public/cleanup) as one queue file, with Postfix qmqpd's envelope
// attributes and Received: header; the one reply is a netstring starting
// with K (queued), Z (try again) or D (refused). Malformed or oversized
// netstrings are refused at once, as Postfix does, and logged with where
// the protocol was.

import type * as net from "node:net";
import { lookupService } from "node:dns/promises";
import type { Config } from "../../lib/config/mod.ts";
import { CleanupClient, cleanupFlagsFor } from "../../lib/cleanup_client.ts";
import { type DaemonContext, singleServer } from "../../lib/daemon/server.ts";
import { quoteAddress } from "../../lib/address/quote.ts";
import { fatal, info, warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import { RecordType } from "../../lib/queue/record.ts";
import { rfc5322Date } from "../../lib/smtp/received.ts";
import { CleanupStat } from "../cleanup/status.ts";
import { type HostList, hostList } from "../smtpd/match.ts";
import { encodeNetstring, NetstringError, NetstringReader } from "./netstring.ts";

/** QMQP reply codes. */
export const QmqpStatus = { OK: "K", RETRY: "Z", HARD: "D" } as const;
type Status = typeof QmqpStatus[keyof typeof QmqpStatus];

/** The settings qmqpd reads once. */
export interface QmqpdSettings {
  authorized: HostList;
  timeoutMs: number;
  errorDelayMs: number;
  portLogging: boolean;
  messageSizeLimit: number;
  lineLengthLimit: number;
  softBounce: boolean;
  myhostname: string;
  mailName: string;
  cleanupSocket: string;
  cleanupFlags: number;
}

/** Reads qmqpd's parameters. */
export function qmqpdSettings(config: Config): QmqpdSettings {
  const parentMatches = config.list("parent_domain_matches_subdomains")
    .includes("qmqpd_authorized_clients");
  const queue = config.get("queue_directory");
  return {
    authorized: hostList(config.list("qmqpd_authorized_clients"), parentMatches),
    timeoutMs: config.time("qmqpd_timeout") * 1000,
    errorDelayMs: config.time("qmqpd_error_delay") * 1000,
    portLogging: config.bool("qmqpd_client_port_logging"),
    messageSizeLimit: config.size("message_size_limit"),
    lineLengthLimit: config.int("line_length_limit"),
    softBounce: config.bool("soft_bounce"),
    myhostname: config.get("myhostname"),
    mailName: config.get("mail_name"),
    cleanupSocket: `${queue}/public/${config.get("cleanup_service_name") || "cleanup"}`,
    cleanupFlags: cleanupFlagsFor(config.list("receive_override_options")),
  };
}

/** The client as qmqpd names it. */
export interface QmqpClient {
  name: string;
  addr: string;
  port: string;
  /** `name[addr]`, with `:port` under qmqpd_client_port_logging. */
  namaddr: string;
}

/** What one QMQP packet carried. */
export interface QmqpPacket {
  message: Uint8Array;
  sender: string;
  recipients: string[];
}

/** Where the protocol was, for the log and the reply (Postfix's wording). */
const Where = {
  HEADER: "receiving QMQP packet header",
  CONTENT: "receiving message content",
  SENDER: "receiving sender address",
  RECIPIENT: "receiving recipient address",
} as const;

/** A netstring exception and where it happened. */
export class PacketError extends Error {
  constructor(readonly problem: NetstringError, readonly where: string) {
    super(`${problem.message} while ${where}`);
    this.name = "PacketError";
  }
}

const decoder = new TextDecoder();

/**
 * Reads one QMQP packet: the outer length, the message (at most
 * message_size_limit bytes), the sender and the recipients (at most
 * line_length_limit bytes each), then the outer comma.
 */
export async function readPacket(
  reader: NetstringReader,
  st: Pick<QmqpdSettings, "messageSizeLimit" | "lineLengthLimit">,
): Promise<QmqpPacket> {
  let where: string = Where.HEADER;
  try {
    const total = await reader.length(0);
    const start = reader.consumed;
    where = Where.CONTENT;
    const message = await reader.netstring(st.messageSizeLimit);
    where = Where.SENDER;
    const sender = decoder.decode(await reader.netstring(st.lineLengthLimit));
    where = Where.RECIPIENT;
    const recipients: string[] = [];
    while (reader.consumed - start < total) {
      recipients.push(decoder.decode(await reader.netstring(st.lineLengthLimit)));
    }
    await reader.terminator();
    return { message, sender, recipients };
  } catch (err) {
    if (err instanceof NetstringError) throw new PacketError(err, where);
    throw err;
  }
}

/**
 * The qmail VERP convention: a sender ending in `-@[]` asks for VERP; the
 * suffix and the `-` before the last `@` go, and the delimiters are `-=`.
 */
export function qmailVerp(sender: string): { sender: string; verp?: string } {
  if (!sender.endsWith("-@[]")) return { sender };
  const base = sender.slice(0, -4);
  const at = base.lastIndexOf("@");
  if (at < 1 || base[at - 1] !== "-") return { sender };
  return { sender: base.slice(0, at - 1) + base.slice(at), verp: "-=" };
}

/** qmqpd's Received: header (the `for` clause only with one recipient). */
export function qmqpReceived(
  client: QmqpClient,
  st: Pick<QmqpdSettings, "myhostname" | "mailName">,
  queueId: string,
  recipients: string[],
  when: Date,
): string[] {
  const addr = client.addr.includes(":") ? `IPv6:${client.addr}` : client.addr;
  const first = `Received: from ${client.name} (${client.name} [${addr}])`;
  const date = rfc5322Date(when);
  if (recipients.length === 1) {
    return [
      first,
      `\tby ${st.myhostname} (${st.mailName}) with QMQP id ${queueId}`,
      // Postfix quotes the address as given, even when it is quoted already.
      `\tfor <${quoteAddress(recipients[0])}>; ${date}`,
    ];
  }
  return [first, `\tby ${st.myhostname} (${st.mailName}) with QMQP`, `\tid ${queueId}; ${date}`];
}

/** The reply for cleanup's status, in Postfix qmqpd's order of tests. */
export function statusReply(
  status: number,
  reason: string,
  queueId: string,
): { status: Status; text: string } {
  const { OK, RETRY, HARD } = QmqpStatus;
  if (status === 0) return { status: OK, text: `Ok: queued as ${queueId}` };
  if (status & CleanupStat.DEFER) return { status: RETRY, text: `Error: ${reason}` };
  if (status & CleanupStat.BAD) return { status: RETRY, text: `Error: internal error ${status}` };
  if (status & CleanupStat.SIZE) return { status: HARD, text: "Error: message too large" };
  if (status & CleanupStat.HOPS) return { status: HARD, text: "Error: too many hops" };
  if (status & CleanupStat.CONT) {
    return { status: reason.startsWith("4") ? RETRY : HARD, text: `Error: ${reason}` };
  }
  if (status & CleanupStat.WRITE) return { status: RETRY, text: "Error: queue file write error" };
  if (status & CleanupStat.RCPT) return { status: HARD, text: "Error: no recipients specified" };
  return { status: RETRY, text: `Error: internal error ${status}` };
}

/** One connection's state. */
class QmqpSession {
  queueId = "";

  constructor(
    readonly conn: net.Socket,
    readonly client: QmqpClient,
    readonly st: QmqpdSettings,
  ) {}

  /**
   * Sends the reply netstring; a negative one after qmqpd_error_delay.
   * `log`: warn about a negative reply (info for a positive one).
   */
  async reply(status: Status, text: string, log: boolean): Promise<void> {
    if (status === QmqpStatus.HARD && this.st.softBounce) status = QmqpStatus.RETRY;
    if (log) {
      const line = `${this.queueId}: ${this.client.namaddr}: ${text}`;
      status === QmqpStatus.OK ? info(line) : warn(line);
    }
    if (status !== QmqpStatus.OK && this.st.errorDelayMs > 0) {
      await new Promise((r) => setTimeout(r, this.st.errorDelayMs));
    }
    if (!this.conn.destroyed) this.conn.write(encodeNetstring(status + text));
  }

  /** Opens the queue file, reads the packet, hands it to cleanup and replies. */
  async run(reader: NetstringReader): Promise<void> {
    const when = new Date();
    let cleanup: CleanupClient;
    try {
      cleanup = await CleanupClient.open(cleanupPath(this.st.cleanupSocket), this.st.cleanupFlags);
    } catch {
      fatal("unable to connect to the public cleanup service");
    }
    this.queueId = cleanup.queueId;
    info(`${this.queueId}: client=${this.client.namaddr}`);
    let packet: QmqpPacket;
    try {
      packet = await readPacket(reader, this.st);
    } catch (err) {
      cleanup.close();
      if (!(err instanceof PacketError)) throw err;
      if (err.problem.kind === "format" || err.problem.kind === "size") {
        await this.reply(QmqpStatus.HARD, err.message, false);
      }
      info(`${this.queueId}: ${this.client.namaddr}: ${err.message}`);
      return;
    }
    let result;
    try {
      await this.writeMessage(cleanup, packet, when);
      result = await cleanup.finish();
    } catch {
      result = { status: CleanupStat.WRITE, reason: "" };
    } finally {
      cleanup.close();
    }
    const r = statusReply(result.status, result.reason, this.queueId);
    await this.reply(r.status, r.text, r.status !== QmqpStatus.OK);
  }

  /** The envelope, the Received: header and the content, as Postfix's qmqpd writes them. */
  private async writeMessage(c: CleanupClient, p: QmqpPacket, when: Date): Promise<void> {
    const { name, addr, port } = this.client;
    const ms = when.getTime();
    await c.record(RecordType.TIME, `${Math.floor(ms / 1000)} ${(ms % 1000) * 1000}`);
    const { sender, verp } = qmailVerp(p.sender);
    await c.record(RecordType.FROM, sender);
    if (verp) await c.record(RecordType.VERP, verp);
    const attrs: [string, string][] = [
      ["log_client_name", name],
      ["log_client_address", addr],
      ["log_client_port", port],
      ["log_message_origin", `${name}[${addr}]`],
      ["log_protocol_name", "QMQP"],
      ["client_name", name],
      ["client_address", addr],
      ["client_port", port],
      ["client_address_type", addr.includes(":") ? "10" : "2"],
      ["protocol_name", "QMQP"],
    ];
    for (const [k, v] of attrs) if (v) await c.record(RecordType.ATTR, `${k}=${v}`);
    for (const r of p.recipients) {
      await c.record(RecordType.ATTR, `dsn_orig_rcpt=rfc822;${r}`);
      await c.record(RecordType.RCPT, r);
    }
    await c.record(RecordType.MESG, "");
    for (const line of qmqpReceived(this.client, this.st, this.queueId, p.recipients, when)) {
      await c.record(RecordType.NORM, line);
    }
    await writeContent(c, p.message, this.st.lineLengthLimit);
    await c.record(RecordType.XTRA, "");
    await c.record(RecordType.END, "");
  }
}

/** Message lines as records: long lines in line_length_limit pieces, the last piece normal. */
async function writeContent(c: CleanupClient, message: Uint8Array, limit: number): Promise<void> {
  let at = 0;
  while (at < message.length) {
    let nl = message.indexOf(0x0a, at);
    const complete = nl >= 0;
    if (!complete) nl = message.length;
    let start = at;
    while (limit > 0 && nl - start > limit) {
      await c.record(RecordType.CONT, message.subarray(start, start + limit));
      start += limit;
    }
    await c.record(complete ? RecordType.NORM : RecordType.CONT, message.subarray(start, nl));
    // An unterminated last line is ended by an empty normal record.
    if (!complete) await c.record(RecordType.NORM, "");
    at = nl + 1;
  }
}

/** public/cleanup, or private/cleanup when only that exists (stand-alone set-ups). */
function cleanupPath(publicPath: string): string {
  for (const path of [publicPath, publicPath.replace(/\/public\/([^/]+)$/, "/private/$1")]) {
    try {
      Deno.statSync(path);
      return path;
    } catch {
      // Try the next.
    }
  }
  return publicPath;
}

/** node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d. */
function plainAddress(addr: string | undefined): string {
  if (!addr) return "";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

/** The client's name by reverse lookup (/etc/hosts, then DNS), or "unknown". */
async function peerName(addr: string): Promise<string> {
  const timeout = new Promise<string>((r) => setTimeout(() => r("unknown"), 5000));
  const lookup = lookupService(addr, 0).then((x) => x.hostname === addr ? "unknown" : x.hostname)
    .catch(() => "unknown");
  return await Promise.race([lookup, timeout]);
}

/** Who is on the other end; a unix-domain client is the local host, as in Postfix. */
async function identify(conn: net.Socket, portLogging: boolean): Promise<QmqpClient> {
  const addr = plainAddress(conn.remoteAddress);
  const client = addr
    ? { name: await peerName(addr), addr, port: String(conn.remotePort ?? "") }
    : { name: "localhost", addr: "127.0.0.1", port: "" };
  const port = portLogging && client.port ? `:${client.port}` : "";
  return { ...client, namaddr: `${client.name}[${client.addr}]${port}` };
}

/** Serves one QMQP connection. */
export async function serveQmqp(conn: net.Socket, st: QmqpdSettings): Promise<void> {
  conn.setNoDelay?.(true);
  // A client that half-closes after its packet still gets the reply.
  conn.allowHalfOpen = true;
  // The client's packet may arrive before we are ready: buffer from now on.
  const reader = new NetstringReader(conn, st.timeoutMs);
  const client = await identify(conn, st.portLogging);
  info(`connect from ${client.namaddr}`);
  const session = new QmqpSession(conn, client, st);
  let authorized: boolean | undefined;
  try {
    authorized = await st.authorized.matches(client.name, client.addr);
  } catch (err) {
    // A table that cannot be searched: try again later, as Postfix answers.
    warn(`qmqpd_authorized_clients: ${(err as Error).message}`);
  }
  if (authorized === undefined) {
    await session.reply(QmqpStatus.RETRY, "Error: server configuration error", false);
  } else if (!authorized) {
    await session.reply(
      QmqpStatus.HARD,
      `Error: ${client.namaddr} is not authorized to use this service`,
      false,
    );
  } else {
    await session.run(reader);
  }
  info(`disconnect from ${client.namaddr}`);
  conn.end();
}

/** Runs qmqpd under the daemon runtime (one client per process, as Postfix's qmqpd). */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let st: QmqpdSettings | undefined;
  return singleServer(args, ctx, (conn) => serveQmqp(conn, st!), {
    init(d: DaemonContext) {
      st = qmqpdSettings(d.config);
    },
  });
}
