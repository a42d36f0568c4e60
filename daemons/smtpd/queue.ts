// Handing a message to cleanup: the envelope records smtpd writes (in the
// order Postfix's smtpd writes them), the Received: header, message lines
// as N/L records, and cleanup's verdict turned into the final SMTP reply.
// Nothing is acknowledged before cleanup confirms the file is committed.

import { CleanupClient, cleanupFlagsFor } from "../../lib/cleanup_client.ts";
import { info } from "../../lib/log.ts";
import { RecordType } from "../../lib/queue/record.ts";
import { receivedHeader } from "../../lib/smtp/received.ts";
import type { SmtpReply } from "../../lib/smtp/reply.ts";
import { statusDetail } from "../cleanup/status.ts";
import type { Recipient, Session } from "./session.ts";

/** Postfix's CLEANUP_FLAG_HOLD and CLEANUP_FLAG_DISCARD request bits. */
const FLAG_HOLD = 1 << 2;
const FLAG_DISCARD = 1 << 3;

/** Writes message text to cleanup, line by line, keeping the size count. */
export class MessageWriter {
  /** Bytes of message text so far (lines plus their CRLF). */
  size = 0;
  tooBig = false;
  private partial = false;

  constructor(
    private readonly client: CleanupClient,
    private readonly sizeLimit: number,
  ) {}

  /** One line, or a piece of one when `complete` is false. */
  async line(bytes: Uint8Array, complete: boolean): Promise<void> {
    this.size += bytes.length + (complete ? 2 : 0);
    if (this.sizeLimit > 0 && this.size > this.sizeLimit) this.tooBig = true;
    if (this.tooBig) return;
    await this.client.record(complete ? RecordType.NORM : RecordType.CONT, bytes);
    this.partial = !complete;
  }

  /** Ends an unterminated last line. */
  async finishLine(): Promise<void> {
    if (this.partial && !this.tooBig) await this.client.record(RecordType.NORM, "");
    this.partial = false;
  }
}

/** The public cleanup socket, or the private one when only that exists (stand-alone test set-ups). */
function cleanupPath(publicPath: string): string {
  try {
    Deno.statSync(publicPath);
    return publicPath;
  } catch {
    const alt = publicPath.replace(/\/public\/([^/]+)$/, "/private/$1");
    try {
      Deno.statSync(alt);
      return alt;
    } catch {
      return publicPath;
    }
  }
}

/** The cleanup request flags a transaction needs (HOLD and DISCARD results included). */
function requestFlags(s: Session): number {
  let flags = cleanupFlagsFor(s.settings.receiveFlags);
  if (s.actions.hold) flags |= FLAG_HOLD;
  if (s.actions.discard) flags |= FLAG_DISCARD;
  return flags;
}

/**
 * Opens the cleanup stream for the session's transaction and writes the
 * envelope up to the recipients (at the first accepted RCPT, or at MAIL
 * with smtpd_delay_open_until_valid_rcpt = no, as Postfix's smtpd): the
 * queue id is known from here on, and the `ID: client=` line is logged.
 */
export async function openEnvelope(s: Session): Promise<CleanupClient> {
  const st = s.settings;
  const flags = requestFlags(s);
  const client = await CleanupClient.open(cleanupPath(st.cleanupSocket), flags);
  s.cleanup = client;
  s.cleanupFlags = flags;
  s.queueId = client.queueId;
  const sasl = s.saslUsername
    ? `, sasl_method=${s.saslMethod}, sasl_username=${s.saslUsername}`
    : "";
  info(`${s.queueId}: client=${s.client}${sasl}`);
  s.arrival = Date.now();
  const now = s.arrival;
  await client.record(RecordType.TIME, `${Math.floor(now / 1000)} ${(now % 1000) * 1000}`);
  const localRewrite = await s.env.checker.localRewriteClient(s);
  await client.record(RecordType.ATTR, `rewrite_context=${localRewrite ? "local" : "remote"}`);
  if (s.envid) await client.record(RecordType.ATTR, `envelope_id=${s.envid}`);
  if (s.ret) await client.record(RecordType.ATTR, `ret_flags=${s.ret}`);
  await client.record(RecordType.FROM, s.sender ?? "");
  if (s.body) {
    await client.record(RecordType.ATTR, `encoding=${s.body === "8BITMIME" ? "8bit" : "7bit"}`);
  }
  for (const [name, value] of clientAttributes(s)) {
    await client.record(RecordType.ATTR, `${name}=${value}`);
  }
  if (s.verp) await client.record(RecordType.VERP, s.verp);
  return client;
}

/** Sends one accepted recipient to cleanup. */
export async function sendRecipient(client: CleanupClient, r: Recipient): Promise<void> {
  if (r.notify) await client.record(RecordType.ATTR, `notify_flags=${r.notify}`);
  await client.record(RecordType.ATTR, `dsn_orig_rcpt=${r.orcpt || `rfc822;${r.address}`}`);
  await client.record(RecordType.RCPT, r.address);
}

/**
 * The stream for the message content at DATA or the first BDAT: the one
 * opened at RCPT time, told of a HOLD or DISCARD result that came after it
 * opened with an `f` record (as Postfix's smtpd does), else a new one. Ends
 * the envelope (BCC results, FILTER, REDIRECT) and writes the headers
 * smtpd adds.
 */
export async function openMessage(s: Session): Promise<CleanupClient> {
  let client = s.cleanup;
  if (client && s.cleanupFlags !== requestFlags(s)) {
    s.cleanupFlags = requestFlags(s);
    await client.record(RecordType.FLGS, String(s.cleanupFlags));
  }
  if (!client) {
    client = await openEnvelope(s);
    for (const r of s.recipients) await sendRecipient(client, r);
  }
  const st = s.settings;
  if (s.actions.filter) await client.record(RecordType.FILTER, s.actions.filter);
  if (s.actions.redirect) await client.record(RecordType.RDR, s.actions.redirect);
  for (const bcc of s.actions.bcc) await client.record(RecordType.RCPT, bcc);
  await client.record(RecordType.MESG, "");
  for (const header of s.actions.prepend) await client.record(RecordType.NORM, header);
  const lines = receivedHeader({
    helo: s.helo,
    clientName: s.clientName,
    clientAddr: s.clientAddr,
    byHost: st.myhostname,
    mailName: st.mailName,
    protocol: s.protocol,
    queueId: s.queueId,
    recipient: s.recipients.length === 1 ? s.recipients[0].address : undefined,
    when: new Date(s.arrival),
  });
  for (const line of lines) await client.record(RecordType.NORM, line);
  return client;
}

/** The attributes that describe the client to cleanup and the queue file. */
function clientAttributes(s: Session): [string, string][] {
  const xf = s.xforward;
  const name = xf.NAME ?? s.clientName;
  const addr = xf.ADDR ?? s.clientAddr;
  return [
    ["log_client_name", name],
    ["log_client_address", addr],
    ["log_client_port", xf.PORT ?? s.clientPort],
    ["log_message_origin", `${name}[${addr}]`],
    ["log_helo_name", xf.HELO ?? s.helo],
    ["log_protocol_name", xf.PROTO ?? s.protocol],
    ["client_name", s.clientName],
    ["reverse_client_name", s.reverseName],
    ["client_address", s.clientAddr],
    ["client_port", s.clientPort],
    ["server_address", s.serverAddr],
    ["server_port", s.serverPort],
    ["helo_name", s.helo],
    ["protocol_name", s.protocol],
    ["client_address_type", s.clientAddr.includes(":") ? "10" : "2"],
    ["sasl_method", s.saslUsername ? s.saslMethod : ""],
    ["sasl_username", s.saslUsername ?? ""],
  ].filter(([, v]) => v !== "") as [string, string][];
}

/** Ends the content, waits for cleanup, and returns the reply for the client. */
export async function finishMessage(
  s: Session,
  client: CleanupClient,
  writer: MessageWriter,
  okPrefix = "Ok:",
): Promise<SmtpReply> {
  await writer.finishLine();
  if (writer.tooBig) {
    client.close();
    return { code: 552, dsn: "5.3.4", text: "Message size exceeds fixed limit" };
  }
  await client.record(RecordType.XTRA, "");
  await client.record(RecordType.END, "");
  const { status, reason } = await client.finish();
  client.close();
  if (status === 0) return { code: 250, dsn: "2.0.0", text: `${okPrefix} queued as ${s.queueId}` };
  const detail = statusDetail(status);
  const m = /^(\d\.\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(reason);
  const reply: SmtpReply = m
    ? { code: detail.smtp, dsn: m[1], text: m[2] }
    : { code: detail.smtp, dsn: detail.dsn, text: reason || detail.text };
  if (reply.dsn[0] !== String(reply.code)[0]) reply.code = Number(reply.dsn[0] + "51");
  return reply;
}
