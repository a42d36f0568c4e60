// The SMTP command handlers, one per command, and the command loop that
// reads a line, finds its handler, enforces the pipelining, junk and error
// limits, and ends the session as Postfix's smtpd does (replies and log
// lines as the reference words them).

import { info, warn } from "../../lib/log.ts";
import { ReadTimeout } from "../../lib/smtp/line_reader.ts";
import { flushRequest, FlushStatus } from "../../lib/flush_client.ts";
import type { SmtpReply } from "../../lib/smtp/reply.ts";
import { parseAddressArg, parseMailParams, parseRcptParams } from "./params.ts";
import { finishMessage, MessageWriter, openEnvelope, openMessage, sendRecipient } from "./queue.ts";
import { DovecotAuth } from "./sasl.ts";
import { type Session, SessionEnd } from "./session.ts";
import { peerNamesOf, recordPeerNames, validAddressLiteral, validHostname } from "./checks.ts";
import type { PeerStatus } from "../../lib/dns/peer.ts";

/** A handler queues its reply and says whether the command succeeded. */
type Handler = (s: Session, args: string) => Promise<boolean>;

interface Command {
  handler: Handler;
  /** Counted against smtpd_junk_command_limit. */
  junk?: boolean;
  /** Must be the last command of a pipelined group (RFC 2920 3.1). */
  last?: boolean;
}

const rep = (code: number, dsn: string, text: string): SmtpReply => ({ code, dsn, text });
const dec = new TextDecoder("utf-8", { fatal: true });

/** Queues a reply; true for 2xx/3xx. */
function say(s: Session, r: SmtpReply): boolean {
  s.reply(r);
  return r.code < 400;
}

async function helo(s: Session, args: string, ehlo: boolean): Promise<boolean> {
  const name = args.trim();
  if (!name) {
    s.replyLine(`501 Syntax: ${ehlo ? "EHLO" : "HELO"} hostname`);
    return false;
  }
  s.resetTransaction();
  s.helo = name;
  s.esmtp = ehlo;
  s.protocol = (ehlo ? "ESMTP" : "SMTP") + (s.tlsActive ? "S" : "");
  if (!s.settings.smtpdDelayReject) {
    const r = await s.env.checker.helo(s, ehlo ? "EHLO" : "HELO");
    if (r) return say(s, r);
  }
  if (!ehlo) {
    s.replyLine(`250 ${s.settings.myhostname}`);
    return true;
  }
  const lines = [s.settings.myhostname, ...(await ehloKeywords(s))];
  s.reply({ code: 250, dsn: "", text: lines });
  return true;
}

/** The EHLO keywords in Postfix's order, less smtpd_discard_ehlo_keywords. */
async function ehloKeywords(s: Session): Promise<string[]> {
  const st = s.settings;
  const words: string[] = ["PIPELINING"];
  words.push(st.messageSizeLimit > 0 ? `SIZE ${st.messageSizeLimit}` : "SIZE");
  if (!st.disableVrfyCommand) words.push("VRFY");
  words.push("ETRN");
  if (await s.env.checker.hostAuthorized(s, "smtpd_authorized_verp_clients")) words.push("XVERP");
  if (s.env.tls && !s.tlsActive) words.push("STARTTLS");
  const mechs = await saslMechanisms(s);
  if (mechs.length) words.push(`AUTH ${mechs.join(" ")}`);
  if (await s.env.checker.hostAuthorized(s, "smtpd_authorized_xclient_hosts")) {
    words.push("XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT");
  }
  if (await xforwardAllowed(s)) {
    words.push("XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT");
  }
  words.push("ENHANCEDSTATUSCODES", "8BITMIME", "DSN");
  if (st.smtputf8Enable) words.push("SMTPUTF8");
  words.push("CHUNKING");
  const discard = new Set(st.smtpdDiscardEhloKeywords);
  const kept = words.filter((w) => !discard.has(w.split(" ")[0].toLowerCase()));
  if (kept.length < words.length && !discard.has("silent-discard")) {
    const gone = words.filter((w) => !kept.includes(w)).map((w) => w.split(" ")[0].toLowerCase());
    info(`discarding EHLO keywords: ${gone.join(" ")}`);
  }
  s.pipeliningOffered = kept.includes("PIPELINING");
  return kept;
}

async function mail(s: Session, args: string): Promise<boolean> {
  const st = s.settings;
  if (!s.helo && st.smtpdHeloRequired) {
    return say(s, rep(503, "5.5.1", "Error: send HELO/EHLO first"));
  }
  if (s.sender !== undefined) return say(s, rep(503, "5.5.1", "Error: nested MAIL command"));
  const parsed = parseAddressArg(args, "FROM");
  if (parsed === "syntax") return say(s, rep(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
  if (parsed === "address") return say(s, rep(501, "5.1.7", "Bad sender address syntax"));
  const params = parseMailParams(parsed.params, st.messageSizeLimit, {
    allowed: await s.env.checker.hostAuthorized(s, "smtpd_authorized_verp_clients"),
    defaults: st.config.get("default_verp_delimiters"),
    filter: st.config.get("verp_delimiter_filter"),
    nullSender: parsed.address === "",
  });
  if ("code" in params) return say(s, params);
  if (await s.env.limits.messageRateExceeded(s)) throw new SessionEnd();
  s.sender = parsed.address;
  if (!st.smtpdDelayReject) {
    const r = await s.env.checker.sender(s, "MAIL") ??
      await s.env.checker.unlistedSender(s, "MAIL");
    if (r) {
      s.sender = undefined;
      return say(s, r);
    }
  }
  s.size = params.size;
  s.body = params.body;
  s.ret = params.ret;
  s.envid = params.envid;
  s.smtputf8 = params.smtputf8;
  s.verp = params.verp;
  if (!st.smtpdDelayOpen && !(await ensureEnvelope(s))) {
    s.sender = undefined;
    return say(s, queueWriteError());
  }
  return say(s, rep(250, "2.1.0", "Ok"));
}

async function rcpt(s: Session, args: string): Promise<boolean> {
  const st = s.settings;
  if (s.sender === undefined) return say(s, rep(503, "5.5.1", "Error: need MAIL command"));
  const parsed = parseAddressArg(args, "TO");
  if (parsed === "syntax") return say(s, rep(501, "5.5.4", "Syntax: RCPT TO:<address>"));
  if (parsed === "address" || parsed.address === "") {
    return say(s, rep(501, "5.1.3", "Bad recipient address syntax"));
  }
  if (st.smtpdRecipientLimit > 0 && s.recipients.length >= st.smtpdRecipientLimit) {
    return say(s, rep(452, "4.5.3", "Error: too many recipients"));
  }
  const params = parseRcptParams(parsed.params);
  if ("code" in params) return say(s, params);
  if (await s.env.limits.recipientRateExceeded(s)) throw new SessionEnd();
  s.recipient = parsed.address;
  try {
    const r = await checkRecipient(s, "RCPT");
    if (r) return say(s, r);
    const accepted = { address: parsed.address, notify: params.notify, orcpt: params.orcpt };
    // The stream opens at the first accepted recipient; recipients go to cleanup as accepted.
    if (!(await ensureEnvelope(s))) return say(s, queueWriteError());
    try {
      await sendRecipient(s.cleanup!, accepted);
    } catch (err) {
      warn(`${s.queueId}: ${(err as Error).message}`);
      s.dropCleanup();
      return say(s, queueWriteError());
    }
    s.recipients.push(accepted);
    s.rcptCount++;
    return say(s, rep(250, "2.1.5", "Ok"));
  } finally {
    s.recipient = undefined;
  }
}

/** Opens the transaction's cleanup stream unless it is open; false (logged) when cleanup is unreachable. */
async function ensureEnvelope(s: Session): Promise<boolean> {
  if (s.cleanup) return true;
  try {
    await openEnvelope(s);
    return true;
  } catch (err) {
    warn(`connect to ${s.settings.cleanupSocket}: ${(err as Error).message}`);
    s.dropCleanup();
    return false;
  }
}

function queueWriteError(): SmtpReply {
  return rep(451, "4.3.0", "Error: queue file write error");
}

/** The restrictions a recipient goes through (with smtpd_delay_reject, client to sender first). */
async function checkRecipient(s: Session, stage: string): Promise<SmtpReply | undefined> {
  const c = s.env.checker;
  if (s.settings.smtpdDelayReject) {
    const early = await c.client(s, stage) ?? await c.helo(s, stage) ?? await c.sender(s, stage) ??
      await c.unlistedSender(s, stage);
    if (early) return early;
  }
  return await c.recipient(s, stage);
}

async function data(s: Session, args: string): Promise<boolean> {
  if (s.sender === undefined) return say(s, rep(503, "5.5.1", "Error: need RCPT command"));
  if (s.recipients.length === 0) {
    return say(
      s,
      rep(
        s.rcptCount || s.rcptTried ? 554 : 503,
        "5.5.1",
        s.rcptTried ? "Error: no valid recipients" : "Error: need RCPT command",
      ),
    );
  }
  if (args.trim()) return say(s, rep(501, "5.5.4", "Syntax: DATA"));
  const denied = await s.env.checker.data(s, "DATA", s.recipients.at(-1)?.address);
  if (denied) return say(s, denied);
  let client;
  try {
    client = await openMessage(s);
  } catch (err) {
    warn(`${s.queueId || "NOQUEUE"}: ${(err as Error).message}`);
    s.dropCleanup();
    return say(s, queueWriteError());
  }
  s.reply(rep(354, "", "End data with <CR><LF>.<CR><LF>"));
  s.where = "DATA";
  const writer = new MessageWriter(client, s.settings.messageSizeLimit);
  const limit = s.settings.lineLengthLimit;
  let atLineStart = true;
  for (;;) {
    let line;
    try {
      line = await s.readLine(limit);
    } catch (err) {
      if (err instanceof ReadTimeout) throw err;
      throw err;
    }
    if (line === null) {
      s.dataBytes = writer.size;
      throw new LostInData(writer.size);
    }
    let bytes = line.bytes;
    if (atLineStart && bytes.length > 0 && bytes[0] === 0x2e) {
      // RFC 5321 4.5.2: a line of one dot ends the data; a leading dot is doubled.
      if (bytes.length === 1 && line.complete) break;
      bytes = bytes.subarray(1);
    }
    await writer.line(bytes, line.complete);
    atLineStart = line.complete;
  }
  s.where = "END-OF-MESSAGE";
  return await endMessage(s, client, writer);
}

/** end-of-data restrictions, then cleanup's verdict. */
async function endMessage(
  s: Session,
  client: Awaited<ReturnType<typeof openMessage>>,
  writer: MessageWriter,
  okPrefix = "Ok:",
): Promise<boolean> {
  s.size = writer.size;
  const denied = writer.tooBig ? undefined : await s.env.checker.endOfData(s, "END-OF-MESSAGE");
  let reply: SmtpReply;
  if (denied) {
    client.close();
    reply = denied;
  } else {
    try {
      reply = await finishMessage(s, client, writer, okPrefix);
    } catch (err) {
      warn(`${s.queueId}: ${(err as Error).message}`);
      reply = rep(451, "4.3.0", "Error: queue file write error");
    }
  }
  if (!reply.dsn.startsWith("2") && reply.code !== 552) {
    s.log("END-OF-MESSAGE", "reject", `${reply.code} ${reply.dsn} ${reply.text}`);
  }
  s.cleanup = undefined;
  s.resetTransaction();
  await s.env.limits.messageDone(s);
  return say(s, reply);
}

/** The client went away in the middle of DATA (its byte count goes in the log line). */
export class LostInData extends Error {
  constructor(readonly bytes: number) {
    super("lost connection in DATA");
  }
}

async function bdat(s: Session, args: string): Promise<boolean> {
  const m = /^(\d+)(?:\s+(LAST))?\s*$/i.exec(args.trim());
  if (!m) {
    s.reply(rep(521, "5.5.4", "Syntax: BDAT count [LAST]"));
    throw new SessionEnd();
  }
  const count = Number(m[1]);
  const last = m[2] !== undefined;
  let problem: SmtpReply | undefined;
  if (s.sender === undefined) problem = rep(503, "5.5.1", "Error: need RCPT command");
  else if (s.recipients.length === 0) {
    problem = s.rcptTried
      ? rep(554, "5.5.1", "Error: no valid recipients")
      : rep(503, "5.5.1", "Error: need RCPT command");
  } else if (s.bdatFailed) problem = s.bdatProblem;
  if (!problem && !s.bdatWriter) {
    const denied = await s.env.checker.data(s, "DATA", s.recipients.at(-1)?.address);
    if (denied) problem = denied;
    else {
      try {
        s.bdatWriter = new MessageWriter(await openMessage(s), s.settings.messageSizeLimit);
      } catch (err) {
        warn(`${s.queueId || "NOQUEUE"}: ${(err as Error).message}`);
        s.dropCleanup();
        problem = queueWriteError();
      }
    }
  }
  s.where = "BDAT";
  // The chunk is read in full even when it is refused: it is not a command.
  let left = count;
  while (left > 0) {
    const chunk = await s.readBytes(left);
    if (chunk === null) throw new LostInData(s.bdatWriter?.size ?? 0);
    left -= chunk.length;
    if (!problem) await s.bdatLines(chunk);
  }
  if (problem) {
    if (s.bdatWriter) {
      s.bdatFailed = true;
      s.bdatProblem = problem;
    }
    if (last) s.resetTransaction();
    return say(s, problem);
  }
  s.bdatBytes += count;
  if (!last) {
    if (s.bdatWriter!.tooBig) {
      s.bdatFailed = true;
      s.bdatProblem = rep(552, "5.3.4", "Message size exceeds fixed limit");
      return say(s, s.bdatProblem);
    }
    return say(s, rep(250, "2.0.0", `Ok: ${s.bdatBytes} bytes`));
  }
  await s.bdatFlushPartial();
  const writer = s.bdatWriter!;
  const client = s.cleanup!;
  s.bdatWriter = undefined;
  return await endMessage(s, client, writer, `Ok: ${s.bdatBytes} bytes`);
}

function rset(s: Session, args: string): Promise<boolean> {
  if (args.trim()) return Promise.resolve(say(s, rep(501, "5.5.4", "Syntax: RSET")));
  s.resetTransaction();
  return Promise.resolve(say(s, rep(250, "2.0.0", "Ok")));
}

function noop(s: Session): Promise<boolean> {
  return Promise.resolve(say(s, rep(250, "2.0.0", "Ok")));
}

function quit(s: Session): Promise<boolean> {
  s.reply(rep(221, "2.0.0", "Bye"));
  s.quitting = true;
  return Promise.resolve(true);
}

async function vrfy(s: Session, args: string): Promise<boolean> {
  if (s.settings.disableVrfyCommand) return say(s, rep(502, "5.5.1", "VRFY command is disabled"));
  const arg = args.trim().replace(/\s+SMTPUTF8$/i, "");
  if (!arg) return say(s, rep(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]"));
  const raw = arg.startsWith("<") && arg.endsWith(">") ? arg.slice(1, -1) : arg;
  const parsed = parseAddressArg(`TO:<${raw}>`, "TO");
  if (typeof parsed === "string" || parsed.address === "") {
    return say(s, rep(501, "5.1.3", "Bad recipient address syntax"));
  }
  s.recipient = parsed.address;
  try {
    const r = await checkRecipient(s, "VRFY");
    if (r) return say(s, r);
  } finally {
    s.recipient = undefined;
  }
  return say(s, rep(252, "2.0.0", raw));
}

/**
 * ETRN (RFC 1985): asks the flush service to deliver the mail deferred to
 * a fast_flush_domains site now; the replies and warnings are Postfix's.
 */
async function etrn(s: Session, args: string): Promise<boolean> {
  if (s.settings.smtpdHeloRequired && !s.helo) {
    s.replyLine("503 Error: send HELO/EHLO first");
    return false;
  }
  const words = args.trim().split(/\s+/).filter(Boolean);
  if (words.length !== 1) {
    s.replyLine("500 Syntax: ETRN domain");
    return false;
  }
  if (s.sender !== undefined) {
    s.replyLine("503 Error: MAIL transaction in progress");
    return false;
  }
  const arg = words[0];
  // RFC 1985: "@domain" asks for subdomains too, "#queue" names a queue;
  // the flush service takes the domain part.
  const domain = /^[A-Za-z0-9]/.test(arg) ? arg : arg.slice(1);
  if (!validHostname(domain) && !validAddressLiteral(domain)) {
    s.replyLine("501 Error: invalid parameter syntax");
    return false;
  }
  s.etrnDomain = domain;
  const r = await s.env.checker.etrn(s, "ETRN");
  if (r) return say(s, r);
  switch (await flushRequest(s.settings.config, { request: "send_site", site: domain })) {
    case FlushStatus.ok:
      s.replyLine("250 Queuing started");
      return true;
    case FlushStatus.deny:
      warn(`reject: ETRN ${arg.slice(0, 100)}... from ${s.client}`);
      s.replyLine(`459 <${domain}>: service unavailable`);
      return false;
    case FlushStatus.bad:
      warn(`bad ETRN ${arg.slice(0, 100)}... from ${s.client}`);
      s.replyLine("458 Unable to queue messages");
      return false;
    default:
      warn("unable to talk to fast flush service");
      s.replyLine("458 Unable to queue messages");
      return false;
  }
}

function starttls(s: Session, args: string): Promise<boolean> {
  if (!s.env.tls || s.tlsActive) {
    return Promise.resolve(say(s, rep(502, "5.5.1", "Error: command not implemented")));
  }
  if (args.trim()) return Promise.resolve(say(s, rep(501, "5.5.4", "Syntax: STARTTLS")));
  s.reply(rep(220, "2.0.0", "Ready to start TLS"));
  s.startTls = true;
  return Promise.resolve(true);
}

/** The mechanisms to offer: none without SASL or, with smtpd_tls_auth_only, before TLS. */
async function saslMechanisms(s: Session): Promise<string[]> {
  const st = s.settings;
  if (!st.saslEnable || (st.tlsAuthOnly && !s.tlsActive)) return [];
  if (!s.sasl) {
    const auth = new DovecotAuth(st.saslPath);
    try {
      await auth.open();
    } catch (err) {
      warn(`SASL: connect to ${st.saslPath} failed: ${(err as Error).message}`);
      auth.close();
      return [];
    }
    s.sasl = auth;
  }
  const opts = st.saslSecurityOptions;
  return s.sasl.mechanisms.filter((m) =>
    !(opts.includes("noanonymous") && m === "ANONYMOUS") &&
    !(opts.includes("noplaintext") && (m === "PLAIN" || m === "LOGIN"))
  );
}

async function auth(s: Session, args: string): Promise<boolean> {
  const mechs = await saslMechanisms(s);
  if (mechs.length === 0) return say(s, rep(503, "5.5.1", "Error: authentication not enabled"));
  if (s.saslUsername) return say(s, rep(503, "5.5.1", "Error: already authenticated"));
  if (s.sender !== undefined) {
    return say(s, rep(503, "5.5.1", "Error: MAIL transaction in progress"));
  }
  const [mech, initial] = args.trim().split(/\s+/);
  if (!mech) return say(s, rep(501, "5.5.4", "Syntax: AUTH mechanism"));
  const name = mech.toUpperCase();
  if (!mechs.includes(name)) {
    return say(
      s,
      rep(535, "5.7.8", "Error: authentication failed: Invalid authentication mechanism"),
    );
  }
  let started;
  try {
    started = await s.sasl!.start(name, initial === "=" ? "" : initial, {
      service: "smtp",
      localIp: s.serverAddr,
      remoteIp: s.clientAddr,
      secured: s.tlsActive,
    });
  } catch (err) {
    warn(`SASL: ${(err as Error).message}`);
    return say(s, rep(454, "4.7.0", "Temporary authentication failure"));
  }
  let step = started.step;
  while (step.kind === "continue") {
    s.replyLine(`334 ${step.challenge}`);
    const line = await s.readLine(s.settings.lineLengthLimit);
    if (line === null) throw new LostConnection();
    const text = new TextDecoder().decode(line.bytes).trim();
    if (text === "*") return say(s, rep(501, "5.7.0", "Authentication aborted"));
    step = await s.sasl!.continue(started.id, text);
  }
  if (step.kind === "fail") {
    const reason = step.reason || "authentication failure";
    warn(`${s.client}: SASL ${name} authentication failed: ${reason}`);
    return say(s, rep(535, "5.7.8", `Error: authentication failed: ${reason}`));
  }
  s.saslUsername = step.user;
  s.saslMethod = name;
  return say(s, rep(235, "2.7.0", "Authentication successful"));
}

const xclientNames = new Set([
  "NAME",
  "ADDR",
  "PORT",
  "PROTO",
  "HELO",
  "LOGIN",
  "REVERSE_NAME",
  "DESTADDR",
  "DESTPORT",
]);
const xforwardNames = new Set(["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"]);

/** name=xtext pairs of XCLIENT/XFORWARD, or undefined on bad syntax. */
function xattrs(args: string, known: Set<string>): Record<string, string> | string | undefined {
  const out: Record<string, string> = {};
  const words = args.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return undefined;
  for (const w of words) {
    const eq = w.indexOf("=");
    const name = w.slice(0, eq).toUpperCase();
    if (eq <= 0) return undefined;
    if (!known.has(name)) return name;
    let value = w.slice(eq + 1).replace(
      /\+([0-9A-F]{2})/g,
      (_, h) => String.fromCharCode(parseInt(h, 16)),
    );
    if (known === xclientNames && /^(NAME|REVERSE_NAME)$/.test(name)) {
      // Kept as given: xclient() turns these into "unknown" with a lookup status.
    } else if (value === "[UNAVAILABLE]" || value === "[TEMPUNAVAIL]") {
      value = name === "NAME" ? "unknown" : "";
    }
    out[name] = value.replace(/^IPV6:/i, "");
  }
  return out;
}

async function xclient(s: Session, args: string): Promise<boolean> {
  if (!(await s.env.checker.hostAuthorized(s, "smtpd_authorized_xclient_hosts"))) {
    return say(s, rep(550, "5.7.0", "Error: insufficient authorization"));
  }
  if (s.sender !== undefined) {
    return say(s, rep(503, "5.5.1", "Error: MAIL transaction in progress"));
  }
  const a = xattrs(args, xclientNames);
  if (!a) return say(s, rep(501, "5.5.4", "Syntax: XCLIENT attribute=value..."));
  if (typeof a === "string") return say(s, rep(501, "5.5.4", `Bad XCLIENT attribute name: ${a}`));
  if (a.NAME !== undefined || a.REVERSE_NAME !== undefined) setXclientNames(s, a);
  if (a.ADDR !== undefined) s.clientAddr = a.ADDR;
  if (a.PORT !== undefined) s.clientPort = a.PORT;
  if (a.DESTADDR !== undefined) s.serverAddr = a.DESTADDR;
  if (a.DESTPORT !== undefined) s.serverPort = a.DESTPORT;
  if (a.LOGIN !== undefined) s.saslUsername = a.LOGIN || undefined;
  s.helo = a.HELO ?? "";
  s.protocol = a.PROTO ?? "SMTP";
  s.esmtp = false;
  s.resetTransaction();
  if (!s.settings.smtpdDelayReject) {
    // As at connect time: the client restrictions answer for the new client.
    const denied = await s.env.checker.client(s, "XCLIENT");
    if (denied) {
      s.clientReject = accessDenied(s);
      return say(s, denied);
    }
  }
  s.replyLine(`220 ${s.settings.smtpdBanner}`);
  return true;
}

/** The reply every command but QUIT gets after the client was rejected at connect (or XCLIENT). */
export function accessDenied(s: Session): SmtpReply {
  return rep(503, "5.7.0", `Error: access denied for ${s.client}`);
}

/** Lookup status of an XCLIENT name value: [UNAVAILABLE] is a permanent failure, [TEMPUNAVAIL] a temporary one. */
function xclientName(value: string): { name: string; status: PeerStatus } {
  if (value === "[UNAVAILABLE]" || value === "") return { name: "unknown", status: "perm" };
  if (value === "[TEMPUNAVAIL]") return { name: "unknown", status: "temp" };
  return { name: value, status: "ok" };
}

/**
 * XCLIENT NAME and REVERSE_NAME, with the lookup status that
 * reject_unknown_(reverse_)client_hostname reads (a missing REVERSE_NAME
 * follows NAME).
 */
function setXclientNames(s: Session, a: Record<string, string>): void {
  const lookups = peerNamesOf(s);
  if (a.NAME !== undefined) {
    const n = xclientName(a.NAME);
    s.clientName = n.name;
    lookups.name = n.name;
    lookups.nameStatus = n.status;
    if (a.REVERSE_NAME === undefined) {
      s.reverseName = n.name;
      lookups.reverseName = n.name;
      lookups.reverseStatus = n.status;
    }
  }
  if (a.REVERSE_NAME !== undefined) {
    const r = xclientName(a.REVERSE_NAME);
    s.reverseName = r.name;
    lookups.reverseName = r.name;
    lookups.reverseStatus = r.status;
  }
  recordPeerNames(s, lookups);
}

async function xforward(s: Session, args: string): Promise<boolean> {
  if (!(await xforwardAllowed(s))) {
    return say(s, rep(550, "5.7.0", "Error: insufficient authorization"));
  }
  if (s.sender !== undefined) {
    return say(s, rep(503, "5.5.1", "Error: MAIL transaction in progress"));
  }
  const a = xattrs(args, xforwardNames);
  if (!a) return say(s, rep(501, "5.5.4", "Syntax: XFORWARD attribute=value..."));
  if (typeof a === "string") return say(s, rep(501, "5.5.4", `Bad XFORWARD attribute name: ${a}`));
  Object.assign(s.xforward, a);
  return say(s, rep(250, "2.0.0", "Ok"));
}

/** XFORWARD permission belongs to the real client, decided once (XCLIENT does not change it). */
async function xforwardAllowed(s: Session): Promise<boolean> {
  s.xforwardAllowed ??= await s.env.checker.hostAuthorized(s, "smtpd_authorized_xforward_hosts");
  return s.xforwardAllowed;
}

/** The command table, in Postfix's order (the disconnect line counts in this order). */
const commands: Record<string, Command> = {
  HELO: { handler: (s, a) => helo(s, a, false), junk: true, last: true },
  EHLO: { handler: (s, a) => helo(s, a, true), junk: true, last: true },
  STARTTLS: { handler: starttls, last: true },
  XCLIENT: { handler: xclient, last: true },
  XFORWARD: { handler: xforward },
  AUTH: { handler: auth, last: true },
  MAIL: { handler: mail },
  RCPT: { handler: rcpt },
  DATA: { handler: data, last: true },
  BDAT: { handler: bdat },
  RSET: { handler: rset, junk: true },
  NOOP: { handler: noop, junk: true, last: true },
  VRFY: { handler: vrfy, junk: true, last: true },
  ETRN: { handler: etrn, junk: true, last: true },
  QUIT: { handler: quit, last: true },
};

/** Commands allowed before STARTTLS when TLS is required. */
const tlsExempt = new Set(["EHLO", "HELO", "STARTTLS", "QUIT", "NOOP", "RSET"]);

/** Pending input as the "improper command pipelining" log line shows it. */
function pendingText(s: Session): string {
  const bytes = s.reader.peek(100);
  let out = "";
  for (const b of bytes) {
    if (b === 13) out += "\\r";
    else if (b === 10) out += "\\n";
    else if (b < 32 || b > 126) out += `\\${b.toString(8).padStart(3, "0")}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Rejects pipelining where it is not allowed; true when the session must end. */
function pipeliningViolation(s: Session, verb: string): boolean {
  if (s.reader.buffered() === 0) return false;
  s.illPipelining = true;
  if (!s.settings.smtpdForbidUnauthPipelining) return false;
  info(`improper command pipelining after ${verb} from ${s.client}: ${pendingText(s)}`);
  s.reply(rep(554, "5.5.0", "Error: SMTP protocol synchronization"));
  return true;
}

/** A client that talks before the greeting; true when it is to be dropped. */
export function greetingViolation(s: Session): boolean {
  return pipeliningViolation(s, "CONNECT");
}

/** Runs the command loop until QUIT, an error limit, a timeout or the client's end. */
export async function commandLoop(s: Session): Promise<void> {
  const st = s.settings;
  const host = st.myhostname;
  for (;;) {
    if (s.errorCount >= st.smtpdHardErrorLimit) {
      s.reply(rep(421, "4.7.0", `${host} Error: too many errors`));
      info(`too many errors after ${s.where} from ${s.client}`);
      return;
    }
    const line = await s.readLine(st.lineLengthLimit);
    if (line === null) throw new LostConnection();
    if (!line.complete) {
      // A command line over line_length_limit: the rest is dropped.
      for (let more = line; !more.complete;) {
        const next = await s.readLine(st.lineLengthLimit);
        if (next === null) throw new LostConnection();
        more = next;
      }
    }
    let text: string;
    try {
      text = dec.decode(line.bytes);
    } catch {
      s.count("unknown", false);
      s.errorCount++;
      await s.errorDelay();
      s.reply(rep(500, "5.5.2", "Error: bad UTF-8 syntax"));
      continue;
    }
    const sp = text.search(/[ \t]/);
    const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
    const args = sp < 0 ? "" : text.slice(sp + 1);
    if (st.smtpdForbiddenCommands.includes(verb.replace(/:$/, "")) || /^[^A-Za-z]/.test(text)) {
      s.count("unknown", false);
      warn(`non-SMTP command from ${s.client}: ${text.slice(0, 100)}`);
      s.reply(rep(221, "2.7.0", "Error: I can break rules, too. Goodbye."));
      return;
    }
    const cmd = commands[verb];
    if (!cmd) {
      s.count("unknown", false);
      s.errorCount++;
      s.where = "UNKNOWN";
      await s.errorDelay();
      s.reply(rep(500, "5.5.2", "Error: command not recognized"));
      continue;
    }
    s.where = verb;
    if ((cmd.last || !s.pipeliningOffered) && pipeliningViolation(s, verb)) {
      s.count(verb.toLowerCase(), false);
      return;
    }
    if (cmd.junk && s.junkCommands++ > st.smtpdJunkCommandLimit) s.errorCount++;
    if (s.clientReject && verb !== "QUIT") {
      // Rejected at connect (smtpd_delay_reject = no): nothing but QUIT is served.
      s.count(verb.toLowerCase(), false);
      s.errorCount++;
      await s.errorDelay();
      s.reply(s.clientReject);
      continue;
    }
    if (s.env.tls && st.tlsSecurityLevel === "encrypt" && !s.tlsActive && !tlsExempt.has(verb)) {
      // smtpd_tls_security_level = encrypt: nothing but the TLS handshake's way in.
      s.count(verb.toLowerCase(), false);
      s.errorCount++;
      s.reply(rep(530, "5.7.0", "Must issue a STARTTLS command first"));
      continue;
    }
    if (verb === "RCPT") s.rcptTried = true;
    let ok: boolean;
    try {
      ok = await cmd.handler(s, args);
    } catch (err) {
      if (err instanceof SessionEnd) {
        s.count(verb.toLowerCase(), false);
        return;
      }
      if (!(err instanceof ReadTimeout)) s.count(verb.toLowerCase(), false);
      throw err;
    }
    s.count(verb.toLowerCase(), ok);
    if (!ok) {
      s.errorCount++;
      await s.errorDelay();
    }
    if (s.quitting) return;
    if (s.startTls) {
      s.startTls = false;
      try {
        await s.upgradeTls();
      } catch (err) {
        info(`SSL_accept error from ${s.client}: ${(err as Error).message}`);
        throw new LostConnection();
      }
    }
  }
}

/** The client closed the connection. */
export class LostConnection extends Error {}
