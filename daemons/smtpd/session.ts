// One SMTP session: the connection object that holds the session state, the
// command loop (read a line, dispatch to the command's handler, count
// errors, flush replies when no pipelined input is left) and the log lines
// Postfix's smtpd writes for a session. The handlers are in commands.ts.

import { info, warn } from "../../lib/log.ts";
import { LineReader, ReadTimeout } from "../../lib/smtp/line_reader.ts";
import { formatReply, type SmtpReply } from "../../lib/smtp/reply.ts";
import type { CleanupClient } from "../../lib/cleanup_client.ts";
import { type CheckContext, type Checker, type MessageActions, noActions } from "./checks.ts";
import type { SmtpdSettings } from "./settings.ts";
import type { MessageWriter } from "./queue.ts";
import type { DovecotAuth } from "./sasl.ts";
import type { Limits } from "./limits.ts";

/** Where bytes go and how the session ends; a socket or standard input/output. */
export interface Transport {
  write(data: string | Uint8Array): void;
  /** Closes the connection after what was written. */
  close(): void;
}

/** Who the client is (from the socket, or from XCLIENT). */
export interface ClientInfo {
  name: string;
  reverseName: string;
  addr: string;
  port: string;
  serverAddr: string;
  serverPort: string;
}

/** One recipient of the transaction. */
export interface Recipient {
  address: string;
  notify: number;
  orcpt: string;
}

/** What smtpd shares between its sessions. */
export interface SmtpdEnv {
  settings: SmtpdSettings;
  checker: Checker;
  limits: Limits;
  /** The TLS server options when STARTTLS is offered. */
  tls?: { cert: string; key: string };
  /** The service name for anvil's keys (`smtp`, `submission`). */
  service: string;
}

/** Ends the session after the reply that is queued (421, 221, 521). */
export class SessionEnd extends Error {}

/** The connection object: everything one SMTP session knows. */
export class Session implements CheckContext {
  readonly reader: LineReader;
  private out = "";
  // Client identity.
  clientName: string;
  reverseName: string;
  clientAddr: string;
  clientPort: string;
  serverAddr: string;
  serverPort: string;
  helo = "";
  protocol = "SMTP";
  esmtp = false;
  // Transaction state.
  sender?: string;
  recipient?: string;
  recipients: Recipient[] = [];
  rcptCount = 0;
  size = 0;
  body = "";
  ret = 0;
  envid = "";
  smtputf8 = false;
  /** XVERP delimiters of the transaction, or "". */
  verp = "";
  queueId = "";
  actions: MessageActions = noActions();
  /** The cleanup stream of the transaction (open from the first accepted RCPT), its request flags, and the arrival time sent. */
  cleanup?: CleanupClient;
  cleanupFlags = 0;
  arrival = 0;
  /** BDAT state: bytes received so far, and whether a chunk failed. */
  bdatBytes = 0;
  bdatFailed = false;
  bdatTooBig = false;
  bdatPartial = "";
  // Session counters.
  errorCount = 0;
  junkCommands = 0;
  illPipelining = false;
  saslUsername?: string;
  xforward: Record<string, string> = {};
  /** The Dovecot auth connection, and the mechanism that authenticated the client. */
  sasl?: DovecotAuth;
  saslMethod = "";
  /** Whether the real client may send XFORWARD (decided at first use). */
  xforwardAllowed?: boolean;
  /** anvil counted this connection (a disconnect is owed). */
  anvilRegistered = false;
  /** EHLO announced PIPELINING: pipelined MAIL/RCPT/RSET groups are allowed. */
  pipeliningOffered = false;
  /** QUIT was given; STARTTLS accepted and pending; TLS in force. */
  quitting = false;
  startTls = false;
  tlsActive = false;
  /** A RCPT command was seen in this transaction (DATA's reply depends on it). */
  rcptTried = false;
  /** Message bytes received when the client was lost in DATA. */
  dataBytes = 0;
  etrnDomain?: string;
  bdatProblem?: SmtpReply;
  bdatWriter?: MessageWriter;
  private bdatRest: Uint8Array = new Uint8Array(0);
  /** The client rejection found at connect time (smtpd_delay_reject = no). */
  clientReject?: SmtpReply;
  /** The command being served, for "lost connection after X" lines. */
  where = "CONNECT";
  /** Per-command success/total counts for the disconnect line, in table order. */
  readonly counts = new Map<string, [number, number]>();
  private ending = false;

  constructor(
    readonly env: SmtpdEnv,
    readonly transport: Transport,
    client: ClientInfo,
    flowPause?: { pause(): void; resume(): void },
  ) {
    this.reader = new LineReader(flowPause);
    this.reader.timeoutMs = env.settings.smtpdTimeout * 1000;
    this.clientName = client.name;
    this.reverseName = client.reverseName;
    this.clientAddr = client.addr;
    this.clientPort = client.port;
    this.serverAddr = client.serverAddr;
    this.serverPort = client.serverPort;
  }

  /** `name[addr]`, as every log line names the client. */
  get client(): string {
    return `${this.clientName}[${this.clientAddr}]`;
  }

  get settings(): SmtpdSettings {
    return this.env.settings;
  }

  /** Queues a reply; replies go out when no pipelined input is left (or on flush). */
  reply(r: SmtpReply): void {
    this.out += formatReply(r);
  }

  /** Queues a reply given as its wire text without the line ending. */
  replyLine(text: string): void {
    this.out += text + "\r\n";
  }

  /** Sends the queued replies. */
  flush(): void {
    if (this.out) {
      this.transport.write(this.out);
      this.out = "";
    }
  }

  /** Logs an action line in Postfix's form: `ID: kind: STAGE from client: text; from=<> to=<> proto= helo=<>`. */
  log(stage: string, kind: string, text: string): void {
    let line = `${this.queueId || "NOQUEUE"}: ${kind}: ${stage} from ${this.client}: ${text};`;
    if (this.sender !== undefined) line += ` from=<${this.sender}>`;
    if (this.recipient !== undefined) line += ` to=<${this.recipient}>`;
    line += ` proto=${this.protocol}`;
    if (this.helo) line += ` helo=<${this.helo}>`;
    info(line);
  }

  /** Counts a command for the disconnect line. */
  count(name: string, ok: boolean): void {
    const c = this.counts.get(name) ?? [0, 0];
    if (ok) c[0]++;
    c[1]++;
    this.counts.set(name, c);
  }

  /** Abandons the cleanup stream: cleanup removes a file it was not told to commit. */
  dropCleanup(): void {
    this.cleanup?.close();
    this.cleanup = undefined;
  }

  /** Forgets the mail transaction (RSET, after DATA, HELO/EHLO). */
  resetTransaction(): void {
    this.dropCleanup();
    this.sender = undefined;
    this.recipient = undefined;
    this.recipients = [];
    this.rcptCount = 0;
    this.size = 0;
    this.body = "";
    this.ret = 0;
    this.envid = "";
    this.smtputf8 = false;
    this.verp = "";
    this.queueId = "";
    this.actions = noActions();
    this.bdatBytes = 0;
    this.bdatFailed = false;
    this.bdatTooBig = false;
    this.bdatPartial = "";
    this.bdatProblem = undefined;
    this.bdatWriter = undefined;
    this.bdatRest = new Uint8Array(0);
    this.rcptTried = false;
  }

  /** Splits a BDAT chunk into message lines (no dot-unstuffing: RFC 3030 2). */
  async bdatLines(chunk: Uint8Array): Promise<void> {
    const w = this.bdatWriter!;
    let data = chunk;
    if (this.bdatRest.length) {
      data = new Uint8Array(this.bdatRest.length + chunk.length);
      data.set(this.bdatRest);
      data.set(chunk, this.bdatRest.length);
    }
    const limit = this.settings.lineLengthLimit;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(10, start);
      if (nl < 0) break;
      let end = nl;
      if (end > start && data[end - 1] === 13) end--;
      for (; end - start > limit; start += limit) {
        await w.line(data.subarray(start, start + limit), false);
      }
      await w.line(data.subarray(start, end), true);
      start = nl + 1;
    }
    for (; data.length - start > limit; start += limit) {
      await w.line(data.subarray(start, start + limit), false);
    }
    this.bdatRest = data.slice(start);
  }

  /** Writes what is left of the last BDAT line. */
  async bdatFlushPartial(): Promise<void> {
    if (this.bdatRest.length && this.bdatWriter) {
      let rest = this.bdatRest;
      if (rest[rest.length - 1] === 13) rest = rest.subarray(0, rest.length - 1);
      await this.bdatWriter.line(rest, true);
    }
    this.bdatRest = new Uint8Array(0);
  }

  /** Switches the connection to TLS (set by the server glue). */
  upgradeTls: () => Promise<void> = () => Promise.reject(new Error("TLS is not available"));

  /** Reads the next line, flushing replies first when the client waits for them. */
  async readLine(limit: number) {
    if (this.reader.buffered() === 0) this.flush();
    return await this.reader.readLine(limit);
  }

  /** Up to `max` raw bytes (BDAT). */
  async readBytes(max: number) {
    if (this.reader.buffered() === 0) this.flush();
    return await this.reader.readBytes(max);
  }

  /** Sleeps before an error reply once the soft error limit is reached. */
  async errorDelay(): Promise<void> {
    const s = this.settings;
    if (this.errorCount >= s.smtpdSoftErrorLimit && s.smtpdErrorSleepTime > 0) {
      this.flush();
      await new Promise((r) => setTimeout(r, s.smtpdErrorSleepTime * 1000));
    }
  }

  /** Ends the session after the queued replies. */
  end(): void {
    if (this.ending) return;
    this.ending = true;
    this.sasl?.close();
    this.flush();
    this.transport.close();
  }

  /** The disconnect line's counters: `ehlo=1 mail=1 rcpt=0/1 ... commands=3/5`. */
  disconnectCounts(): string {
    const order = [
      "helo",
      "ehlo",
      "starttls",
      "xclient",
      "xforward",
      "auth",
      "mail",
      "rcpt",
      "data",
      "bdat",
      "rset",
      "noop",
      "vrfy",
      "etrn",
      "quit",
      "unknown",
    ];
    let ok = 0;
    let total = 0;
    const parts: string[] = [];
    for (const name of order) {
      const c = this.counts.get(name);
      if (!c) continue;
      ok += c[0];
      total += c[1];
      parts.push(c[0] === c[1] ? `${name}=${c[0]}` : `${name}=${c[0]}/${c[1]}`);
    }
    parts.push(ok === total ? `commands=${ok}` : `commands=${ok}/${total}`);
    return parts.join(" ");
  }

  /** Logs a lost connection or a timeout, as Postfix words them. */
  logLost(err: unknown, extra = ""): void {
    if (err instanceof ReadTimeout) {
      info(`timeout after ${this.where}${extra} from ${this.client}`);
    } else {
      info(`lost connection after ${this.where}${extra} from ${this.client}`);
    }
  }

  /** Warns about a client problem with the client named. */
  warnClient(text: string): void {
    warn(`${text} from ${this.client}`);
  }
}
