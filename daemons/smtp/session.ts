// One conversation with one SMTP or LMTP server, as smtp(8) holds it: the
// greeting, EHLO (HELO when EHLO is refused or not wanted; LHLO for LMTP),
// STARTTLS and AUTH when the policy asks, then MAIL FROM, RCPT TO and DATA
// (as one batch when the server offers PIPELINING), the message, and QUIT.
// The conversation decides recipients through callbacks; a failure of the
// whole server is returned so the caller can try the next one.

import type { DeliverRecipient, DeliverRequest } from "../../lib/deliver/request.ts";
import { DsnNotify, DsnRet } from "../../lib/dsn/status.ts";
import { info, warn } from "../../lib/log.ts";
import type { ServerAddress } from "./nexthop.ts";
import type { SmtpSettings } from "./settings.ts";
import {
  ConversationTimeout,
  LostConnection,
  type ServerReply,
  type SmtpStream,
} from "./stream.ts";
import {
  conversationFailure,
  type Failure,
  localFailure,
  relayName,
  replyDsn,
  saidFailure,
  serverName,
  softenedFailure,
} from "./failure.ts";

/** What the server announced in its EHLO/LHLO reply. */
export interface ServerFeatures {
  esmtp: boolean;
  pipelining: boolean;
  size: number | undefined;
  eightBitMime: boolean;
  dsn: boolean;
  smtputf8: boolean;
  starttls: boolean;
  auth: string[];
  /** XFORWARD attribute names the server accepts (empty: no XFORWARD). */
  xforward: string[];
}

/** The outcome of one recipient in a conversation. */
export interface RecipientResult {
  rcpt: DeliverRecipient;
  /** Accepted (sent) with the server's final reply text; or failed. */
  sent?: {
    dsn: string;
    text: string;
    relay: string;
    reply: string;
    host: string;
    /** The server took NOTIFY (SMTP with DSN): it reports success, not we. */
    dsnForwarded: boolean;
    /** Uses of the cached connection it went over (conn_use= in the log). */
    connUse?: number;
  };
  failure?: Failure;
}

/** Steps a conversation asks of its owner (TLS, SASL, message bytes). */
export interface ConversationHooks {
  /** Runs STARTTLS (or checks wrapper-mode TLS) per policy; a failure ends the conversation. */
  tls?(features: ServerFeatures): Promise<Failure | "restart" | undefined>;
  /** Authenticates when configured; a failure ends the conversation. */
  auth?(features: ServerFeatures): Promise<Failure | undefined>;
  /** The message as it goes after DATA (CRLF, dot-stuffed, without the final dot). */
  message(features: ServerFeatures): Uint8Array | Failure;
  /** The envelope sender and recipients as sent (smtp_generic_maps). */
  envelope(address: string): Promise<string>;
  /** Connection setup finished (delays= c). */
  setupDone(): void;
  /** An address probe: stop after RCPT TO, send no message. */
  verifyOnly?: boolean;
  /** EHLO keywords to ignore for this server (smtp_discard_ehlo_keyword_address_maps). */
  discardKeywords?: string[];
  /**
   * A session from the connection cache: greeting and EHLO were done by an
   * earlier delivery (these are the features it saw); RSET comes first.
   */
  reused?: { features: ServerFeatures };
  /**
   * Offers the session to the connection cache after a transaction that
   * ended cleanly; true when the cache took it (no QUIT then).
   */
  offer?(features: ServerFeatures): Promise<boolean>;
}

/** A conversation's end: failures that apply to every recipient not yet decided. */
export interface ConversationEnd {
  results: RecipientResult[];
  /** A failure of the session as a whole (undecided recipients take it). */
  siteFailure?: Failure;
  /** A cached session that failed its RSET: closed, nothing was sent; connect anew. */
  stale?: boolean;
}

const enc = new TextEncoder();
/** Bytes of message content per write (each under its own timeout). */
const WRITE_CHUNK = 256 * 1024;

/** Holds the conversation with `server` over `stream` for `recipients`. */
export class Conversation {
  private features: ServerFeatures = {
    esmtp: false,
    pipelining: false,
    size: undefined,
    eightBitMime: false,
    dsn: false,
    smtputf8: false,
    starttls: false,
    auth: [],
    xforward: [],
  };
  private stage = "receiving the initial server greeting";
  private results: RecipientResult[] = [];

  constructor(
    private readonly stream: SmtpStream,
    private readonly server: ServerAddress,
    private readonly s: SmtpSettings,
    private readonly request: DeliverRequest,
    private readonly recipients: DeliverRecipient[],
    private readonly hooks: ConversationHooks,
  ) {}

  /** The server's features after the handshake. */
  get serverFeatures(): ServerFeatures {
    return this.features;
  }

  /** Runs the whole conversation; never throws for what the server does. */
  async run(): Promise<ConversationEnd> {
    if (this.hooks.reused && !(await this.reset(this.hooks.reused.features))) {
      return { results: [], stale: true };
    }
    try {
      if (!this.hooks.reused) {
        const failure = await this.handshake();
        if (failure) {
          await this.quit();
          return { results: this.results, siteFailure: failure };
        }
      }
      this.hooks.setupDone();
      const end = await this.transaction();
      // The connection cache may keep a session that ended cleanly (no QUIT then).
      if (!end.siteFailure && await this.offer()) return end;
      await this.quit();
      return end;
    } catch (err) {
      this.stream.close();
      if (!(err instanceof ConversationTimeout) && !(err instanceof LostConnection)) {
        // Something the server sent that we could not take (a bad base64
        // challenge, a TLS error): the session is over, the mail waits.
        warn(`${serverName(this.server)}: ${this.stage}: ${(err as Error).message}`);
      }
      return {
        results: this.results,
        siteFailure: conversationFailure(
          this.server,
          err instanceof ConversationTimeout,
          this.stage,
        ),
      };
    }
  }

  /**
   * RSET on a session from the connection cache (smtp_rset_timeout): true
   * when the server answered 2xx; otherwise the session is closed (the
   * server dropped it while it was cached, or it is confused).
   */
  private async reset(features: ServerFeatures): Promise<boolean> {
    this.features = features;
    this.stage = "sending RSET";
    try {
      const r = await this.command("RSET", this.s.timeouts.rset);
      if (Math.floor(r.code / 100) === 2) return true;
    } catch {
      // Lost or timed out: the same as a refusal.
    }
    this.stream.close();
    return false;
  }

  /** Offers the session to the cache; a session that is going away is not offered. */
  private async offer(): Promise<boolean> {
    if (!this.hooks.offer || this.stream.ended || this.stream.pending()) return false;
    try {
      return await this.hooks.offer(this.features);
    } catch (err) {
      warn(`connection cache: ${(err as Error).message}`);
      return false;
    }
  }

  private async command(line: string, timeoutMs: number): Promise<ServerReply> {
    await this.stream.write(line + "\r\n", timeoutMs);
    return await this.stream.readReply(timeoutMs);
  }

  /** Greeting, EHLO/HELO/LHLO, STARTTLS, AUTH; a failure of the server, or undefined. */
  private async handshake(): Promise<Failure | undefined> {
    const t = this.s.timeouts;
    const greeting = await this.stream.readReply(t.helo);
    if (Math.floor(greeting.code / 100) !== 2) {
      const f: Failure = {
        ...saidFailure(this.server, greeting, ""),
        text: `host ${serverName(this.server)} refused to talk to me: ${greeting.text}`,
      };
      return this.s.skip5xxGreeting ? softenedFailure(f) : f;
    }
    const hello = await this.hello(greeting);
    if (hello) return hello;
    if (!this.hooks.tls && this.features.starttls && this.s.tls.noteStarttlsOffer) {
      info(`Host offered STARTTLS: [${this.server.host}]`);
    }
    if (this.hooks.tls) {
      this.stage = "receiving the STARTTLS response";
      const tls = await this.hooks.tls(this.features);
      if (tls === "restart") {
        // A new TLS session starts with a new EHLO (RFC 3207 4.2).
        const again = await this.hello(greeting);
        if (again) return again;
      } else if (tls) return tls;
    }
    if (this.hooks.auth) {
      this.stage = "performing the AUTH handshake";
      const auth = await this.hooks.auth(this.features);
      if (auth) return auth;
    }
    return undefined;
  }

  /** The EHLO (or HELO, LHLO) exchange; sets the features. */
  private async hello(greeting: ServerReply): Promise<Failure | undefined> {
    const t = this.s.timeouts;
    const name = this.s.heloName;
    if (this.s.lmtp) {
      this.stage = "performing the LHLO handshake";
      const r = await this.command(`LHLO ${name}`, t.helo);
      if (Math.floor(r.code / 100) !== 2) return saidFailure(this.server, r, "LHLO command");
      this.parseFeatures(r);
      return undefined;
    }
    const esmtpGreeting = /\bESMTP\b/i.test(greeting.lines.join(" "));
    const useEhlo = !this.s.neverSendEhlo && (this.s.alwaysSendEhlo || esmtpGreeting);
    if (useEhlo) {
      this.stage = "performing the EHLO handshake";
      const r = await this.command(`EHLO ${name}`, t.helo);
      if (Math.floor(r.code / 100) === 2) {
        this.parseFeatures(r);
        return undefined;
      }
      // A server that does not know EHLO says 5xx; anything else is a failure.
      if (Math.floor(r.code / 100) !== 5) return saidFailure(this.server, r, "EHLO command");
    }
    this.stage = "performing the HELO handshake";
    const r = await this.command(`HELO ${name}`, t.helo);
    if (Math.floor(r.code / 100) !== 2) return saidFailure(this.server, r, "HELO command");
    this.features = { ...this.features, esmtp: false };
    return undefined;
  }

  private parseFeatures(r: ServerReply): void {
    const f: ServerFeatures = {
      esmtp: true,
      pipelining: false,
      size: undefined,
      eightBitMime: false,
      dsn: false,
      smtputf8: false,
      starttls: false,
      auth: [],
      xforward: [],
    };
    const discard = this.hooks.discardKeywords ?? this.s.discardEhloKeywords;
    const discarded: string[] = [];
    for (const line of r.lines.slice(1)) {
      const words = line.trim().split(/[\s=]+/);
      const key = (words[0] ?? "").toUpperCase();
      if (discard.includes(key)) {
        discarded.push(key);
        continue;
      }
      if (key === "PIPELINING") f.pipelining = true;
      else if (key === "SIZE") {
        const n = Number(words[1] ?? "0");
        f.size = Number.isFinite(n) && n > 0 ? n : undefined;
      } else if (key === "8BITMIME") f.eightBitMime = true;
      else if (key === "DSN") f.dsn = true;
      else if (key === "SMTPUTF8") f.smtputf8 = true;
      else if (key === "STARTTLS") f.starttls = true;
      else if (key === "XFORWARD") f.xforward = words.slice(1).map((w) => w.toUpperCase());
      else if (key === "AUTH") {
        for (const m of words.slice(1)) {
          if (!f.auth.includes(m.toUpperCase())) f.auth.push(m.toUpperCase());
        }
      }
    }
    this.features = f;
    // "silent-discard" in the list keeps this quiet, as in Postfix.
    if (discarded.length && !discard.includes("SILENT-DISCARD")) {
      info(`discarding EHLO keywords: ${discarded.join(" ")}`);
    }
  }

  /** Checks that must pass before MAIL FROM; a failure for the whole message. */
  private precheck(): Failure | undefined {
    const req = this.request;
    const f = this.features;
    if ((req.smtputf8 & 1) && !f.smtputf8) {
      return localFailure(
        this.server,
        "5.6.7",
        `SMTPUTF8 is required, but was not offered by host ${serverName(this.server)}`,
      );
    }
    if (f.size !== undefined && req.dataSize > f.size) {
      return localFailure(
        this.server,
        "5.3.4",
        `message size ${req.dataSize} exceeds size limit ${f.size} of server ${
          serverName(this.server)
        }`,
      );
    }
    return undefined;
  }

  private async mailCommand(): Promise<string> {
    const req = this.request;
    const f = this.features;
    let cmd = `MAIL FROM:<${await this.hooks.envelope(req.sender)}>`;
    if (f.size !== undefined) cmd += ` SIZE=${req.dataSize}`;
    if (f.eightBitMime && isEightBit(req.encoding)) cmd += " BODY=8BITMIME";
    if (f.smtputf8 && (req.smtputf8 & 1)) cmd += " SMTPUTF8";
    if (f.dsn) {
      if (req.ret & DsnRet.FULL) cmd += " RET=FULL";
      else if (req.ret & DsnRet.HDRS) cmd += " RET=HDRS";
      if (req.envid) cmd += ` ENVID=${xtext(req.envid)}`;
    }
    return cmd;
  }

  private async rcptCommand(rcpt: DeliverRecipient): Promise<string> {
    let cmd = `RCPT TO:<${await this.hooks.envelope(rcpt.address)}>`;
    if (this.features.dsn) {
      const n = rcpt.notify;
      if (n & DsnNotify.NEVER) cmd += " NOTIFY=NEVER";
      else if (n) {
        const kinds: string[] = [];
        if (n & DsnNotify.SUCCESS) kinds.push("SUCCESS");
        if (n & DsnNotify.FAILURE) kinds.push("FAILURE");
        if (n & DsnNotify.DELAY) kinds.push("DELAY");
        cmd += ` NOTIFY=${kinds.join(",")}`;
      }
      if (rcpt.dsnOrcpt) {
        const semi = rcpt.dsnOrcpt.indexOf(";");
        cmd += semi > 0
          ? ` ORCPT=${rcpt.dsnOrcpt.slice(0, semi)};${xtext(rcpt.dsnOrcpt.slice(semi + 1))}`
          : ` ORCPT=rfc822;${xtext(rcpt.dsnOrcpt)}`;
      } else if (rcpt.origRcpt) cmd += ` ORCPT=rfc822;${xtext(rcpt.origRcpt)}`;
    }
    return cmd;
  }

  /**
   * XFORWARD (smtp_send_xforward_command): the original client's name,
   * address, port, then protocol, HELO name, queue id and source, each as
   * the server listed it; an unknown value is [UNAVAILABLE] (XFORWARD_README).
   */
  private async xforward(): Promise<Failure | undefined> {
    if (!this.s.sendXforward || !this.features.xforward.length) return undefined;
    const a = this.request.attrs;
    const pick = (...names: string[]) => names.map((n) => a[n]).find((v) => v) ?? "";
    let addr = pick("log_client_address", "client_address");
    if (addr.includes(":") && !/^ipv6:/i.test(addr)) addr = `IPV6:${addr}`;
    const context = pick("rewrite_context");
    const values: Record<string, string> = {
      NAME: pick("log_client_name", "client_name"),
      ADDR: addr,
      PORT: pick("log_client_port", "client_port"),
      PROTO: pick("log_protocol_name", "protocol_name"),
      HELO: pick("log_helo_name", "helo_name"),
      IDENT: pick("log_ident") || this.request.queueId,
      SOURCE: context === "local" ? "LOCAL" : context === "remote" ? "REMOTE" : "",
    };
    const groups: [string, string[]][] = [
      ["XFORWARD name/address", ["NAME", "ADDR", "PORT"]],
      ["XFORWARD protocol/helo_name", ["PROTO", "HELO", "IDENT", "SOURCE"]],
    ];
    for (const [what, names] of groups) {
      const offered = names.filter((n) => this.features.xforward.includes(n));
      if (!offered.length) continue;
      const parts = offered.map((n) =>
        `${n}=${values[n] ? xtext(values[n].slice(0, 255)) : "[UNAVAILABLE]"}`
      );
      this.stage = `sending ${what}`;
      const r = await this.command(`XFORWARD ${parts.join(" ")}`, this.s.xforwardTimeout);
      if (Math.floor(r.code / 100) !== 2) return saidFailure(this.server, r, `${what} command`);
    }
    return undefined;
  }

  /** MAIL, RCPT, DATA, the message and its reply(ies). */
  private async transaction(): Promise<ConversationEnd> {
    const t = this.s.timeouts;
    const pre = this.precheck();
    if (pre) return this.failAll(pre);
    const message = this.hooks.message(this.features);
    if (!(message instanceof Uint8Array)) return this.failAll(message);
    const xforward = await this.xforward();
    if (xforward) return this.failAll(xforward);
    const mail = await this.mailCommand();
    const rcpts: string[] = [];
    for (const r of this.recipients) rcpts.push(await this.rcptCommand(r));
    const accepted: DeliverRecipient[] = [];
    if (this.hooks.verifyOnly) return await this.probe(mail, rcpts);
    let dataReply: ServerReply | undefined;
    if (this.features.pipelining) {
      // One batch: MAIL, every RCPT, DATA; replies read in order (RFC 2920).
      this.stage = "sending MAIL FROM";
      await this.stream.write([mail, ...rcpts, "DATA"].join("\r\n") + "\r\n", t.mail);
      const mailReply = await this.stream.readReply(t.mail);
      this.stage = "sending RCPT TO";
      const rcptReplies: ServerReply[] = [];
      for (const _ of rcpts) rcptReplies.push(await this.stream.readReply(t.rcpt));
      this.stage = "sending DATA command";
      dataReply = await this.stream.readReply(t.dataInit);
      if (Math.floor(mailReply.code / 100) !== 2) {
        if (dataReply.code === 354) await this.abortData();
        return this.failAll(saidFailure(this.server, mailReply, "MAIL FROM command"));
      }
      this.recipients.forEach((r, i) => this.rcptResult(r, rcptReplies[i], accepted));
    } else {
      this.stage = "sending MAIL FROM";
      const mailReply = await this.command(mail, t.mail);
      if (Math.floor(mailReply.code / 100) !== 2) {
        return this.failAll(saidFailure(this.server, mailReply, "MAIL FROM command"));
      }
      this.stage = "sending RCPT TO";
      for (let i = 0; i < rcpts.length; i++) {
        this.rcptResult(this.recipients[i], await this.command(rcpts[i], t.rcpt), accepted);
      }
      if (!accepted.length) return { results: this.results };
      this.stage = "sending DATA command";
      dataReply = await this.command("DATA", t.dataInit);
    }
    if (!accepted.length) {
      // Every recipient refused: a 354 (broken server) gets an empty message ended.
      if (dataReply.code === 354) await this.abortData();
      return { results: this.results };
    }
    if (dataReply.code !== 354) {
      const f = saidFailure(this.server, dataReply, "DATA command");
      for (const r of accepted) this.results.push({ rcpt: r, failure: f });
      return { results: this.results };
    }
    this.stage = "sending message body";
    // smtp_data_xfer_timeout bounds each write, not the whole message (as Postfix's per-I/O deadline).
    for (let at = 0; at < message.length; at += WRITE_CHUNK) {
      await this.stream.write(message.subarray(at, at + WRITE_CHUNK), t.dataXfer);
    }
    this.stage = "sending end of data -- message may be sent more than once";
    await this.stream.write(".\r\n", t.dataXfer);
    if (this.s.lmtp) {
      // LMTP: one reply per accepted recipient, in RCPT order (RFC 2033 4.2).
      for (const r of accepted) this.finalResult(r, await this.stream.readReply(t.dataDone));
    } else {
      const end = await this.stream.readReply(t.dataDone);
      for (const r of accepted) this.finalResult(r, end);
    }
    return { results: this.results };
  }

  /**
   * An address probe (verify(8), sendmail -bv): MAIL and RCPT only, as
   * Postfix with smtp_address_verify_target = rcpt; an accepted recipient
   * is deliverable with the RCPT reply as its text.
   */
  private async probe(mail: string, rcpts: string[]): Promise<ConversationEnd> {
    const t = this.s.timeouts;
    this.stage = "sending MAIL FROM";
    let mailReply: ServerReply;
    const rcptReplies: ServerReply[] = [];
    if (this.features.pipelining) {
      await this.stream.write([mail, ...rcpts].join("\r\n") + "\r\n", t.mail);
      mailReply = await this.stream.readReply(t.mail);
      this.stage = "sending RCPT TO";
      for (const _ of rcpts) rcptReplies.push(await this.stream.readReply(t.rcpt));
    } else {
      mailReply = await this.command(mail, t.mail);
      this.stage = "sending RCPT TO";
      if (Math.floor(mailReply.code / 100) === 2) {
        for (const r of rcpts) rcptReplies.push(await this.command(r, t.rcpt));
      }
    }
    if (Math.floor(mailReply.code / 100) !== 2) {
      return this.failAll(saidFailure(this.server, mailReply, "MAIL FROM command"));
    }
    this.recipients.forEach((rcpt, i) => {
      const r = rcptReplies[i];
      if (Math.floor(r.code / 100) === 2) {
        this.results.push({
          rcpt,
          sent: {
            dsn: replyDsn(r),
            text: r.text,
            relay: relayName(this.server),
            reply: r.text,
            host: this.server.host,
            dsnForwarded: this.features.dsn && !this.s.lmtp,
          },
        });
      } else this.results.push({ rcpt, failure: saidFailure(this.server, r, "RCPT TO command") });
    });
    return { results: this.results };
  }

  private rcptResult(rcpt: DeliverRecipient, r: ServerReply, accepted: DeliverRecipient[]): void {
    if (Math.floor(r.code / 100) === 2) accepted.push(rcpt);
    else this.results.push({ rcpt, failure: saidFailure(this.server, r, "RCPT TO command") });
  }

  private finalResult(rcpt: DeliverRecipient, r: ServerReply): void {
    if (Math.floor(r.code / 100) === 2) {
      this.results.push({
        rcpt,
        sent: {
          dsn: replyDsn(r),
          text: r.text,
          relay: relayName(this.server),
          reply: r.text,
          host: this.server.host,
          dsnForwarded: this.features.dsn && !this.s.lmtp,
        },
      });
    } else {
      this.results.push({ rcpt, failure: saidFailure(this.server, r, "end of DATA command") });
    }
  }

  /** Ends a DATA phase the server opened although nothing is to be sent. */
  private async abortData(): Promise<void> {
    this.stage = "sending end of data -- message may be sent more than once";
    await this.stream.write(".\r\n", this.s.timeouts.dataXfer);
    await this.stream.readReply(this.s.timeouts.dataDone);
  }

  private failAll(f: Failure): ConversationEnd {
    for (const r of this.recipients) {
      if (!this.results.some((x) => x.rcpt === r)) this.results.push({ rcpt: r, failure: f });
    }
    return { results: this.results };
  }

  /** QUIT, best effort (the reply is awaited unless smtp_skip_quit_response). */
  private async quit(): Promise<void> {
    try {
      if (!this.stream.socket.destroyed) {
        this.stage = "sending QUIT";
        await this.stream.write("QUIT\r\n", this.s.timeouts.quit);
        if (!this.s.skipQuitResponse) await this.stream.readReply(this.s.timeouts.quit);
      }
    } catch {
      // The server went away first: nothing more to say to it.
    } finally {
      this.stream.close();
    }
  }
}

/** Whether the request's body encoding is 8-bit (cleanup's encoding attribute). */
export function isEightBit(encoding: string): boolean {
  return /^8bit/i.test(encoding);
}

/** RFC 3461 4: xtext encoding ("+" and "=", controls and non-ASCII as +HH). */
export function xtext(text: string): string {
  let out = "";
  for (const b of enc.encode(text)) {
    if (b < 33 || b > 126 || b === 0x2b || b === 0x3d) {
      out += "+" + b.toString(16).toUpperCase().padStart(2, "0");
    } else out += String.fromCharCode(b);
  }
  return out;
}
