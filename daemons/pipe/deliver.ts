// One pipe(8) delivery: check the size limit and the recipient count the
// D and O flags need, expand argv= for the request's recipients, build the
// message with the envelope lines the flags ask for, run the command with
// lib/deliver/command.ts, and give every recipient the command's status.

import { quoteAddress } from "../../lib/address/quote.ts";
import { runCommand } from "../../lib/deliver/command.ts";
import type { DeliverRecipient } from "../../lib/deliver/request.ts";
import type { DeliverySession, RecipientStatus } from "../../lib/deliver/agent.ts";
import {
  headerValues,
  messageBytes,
  type MessageContent,
  readMessage,
} from "../../lib/deliver/message.ts";
import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { warn } from "../../lib/log.ts";
import { type PipeAttributes, PipeFlag } from "./attributes.ts";
import { expandArgv, PipeMacroError } from "./expand.ts";

/** What a delivery needs besides the request: the service and its settings. */
export interface PipeSettings {
  /** The master.cf service name (the transport): relay= and the log texts. */
  service: string;
  attrs: PipeAttributes;
  layout: QueueLayout;
  /** $queue_directory: the default working directory. */
  queueDirectory: string;
  /** TRANSPORT_time_limit, else command_time_limit, in seconds. */
  timeLimit: number;
  /** recipient_delimiter. */
  delimiters: string;
  exportEnvironment: string[];
  importEnvironment: string[];
  /** master.cf's path, for macro warnings. */
  masterCf: string;
  /** The current time (tests replace it). */
  now?: () => Date;
}

/** Characters of command output shown in a success status (Postfix shows 100). */
const successOutputLimit = 100;

const enc = new TextEncoder();

/** asctime(3)'s 24 characters in local time: "Tue Nov 24 19:06:35 2026". */
export function asctime(d: Date): string {
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = [
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
  const two = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${
    two(d.getHours())
  }:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

/** The lines the B, D, F, O and R flags put before the message, in Postfix's order. */
export function envelopeLines(
  attrs: PipeAttributes,
  sender: string,
  rcpt: DeliverRecipient | undefined,
  now: Date,
): string[] {
  const f = attrs.flags;
  const lines: string[] = [];
  // From_ names MAILER-DAEMON for the null sender whatever null_sender says.
  if (f.has(PipeFlag.FROM)) {
    lines.push(`From ${sender ? quoteAddress(sender) : "MAILER-DAEMON"}  ${asctime(now)}`);
  }
  if (f.has(PipeFlag.RETURN_PATH)) {
    lines.push(`Return-Path: <${sender ? quoteAddress(sender) : attrs.nullSender}>`);
  }
  if (rcpt && f.has(PipeFlag.ORIG_RCPT)) {
    lines.push(`X-Original-To: ${quoteAddress(rcpt.origRcpt || rcpt.address)}`);
  }
  if (rcpt && f.has(PipeFlag.DELIVERED)) {
    lines.push(`Delivered-To: ${quoteAddress(rcpt.address)}`);
  }
  return lines;
}

/** The bytes the command reads: envelope lines, the message with the . and > flags, a blank line with B. */
export function pipeInput(
  attrs: PipeAttributes,
  content: MessageContent,
  envelope: string[],
): Uint8Array {
  const f = attrs.flags;
  const dot = f.has(PipeFlag.DOT);
  const from = f.has(PipeFlag.QUOTE_FROM);
  const transform = dot || from
    ? (line: Uint8Array) => {
      // "From " → ">From " (the > flag); ".x" → "..x" (the . flag).
      if (from && line.length >= 5 && startsWithFrom(line)) return concat(enc.encode(">"), line);
      if (dot && line[0] === 0x2e) return concat(enc.encode("."), line);
      return line;
    }
    : undefined;
  const eol = attrs.eol;
  const head = enc.encode(envelope.map((l) => l + eol).join(""));
  const body = messageBytes(content, { eol, transform });
  const tail = f.has(PipeFlag.BLANK) ? enc.encode(eol) : new Uint8Array(0);
  const out = new Uint8Array(head.length + body.length + tail.length);
  out.set(head, 0);
  out.set(body, head.length);
  out.set(tail, head.length + body.length);
  return out;
}

function startsWithFrom(line: Uint8Array): boolean {
  return line[0] === 0x46 && line[1] === 0x72 && line[2] === 0x6f && line[3] === 0x6d &&
    line[4] === 0x20;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Gives every recipient of the request the same fate. */
async function decideAll(
  session: DeliverySession,
  outcome: "sent" | "bounced" | "deferred",
  status: RecipientStatus,
): Promise<void> {
  for (const rcpt of session.request.recipients) {
    if (outcome === "sent") await session.sent(rcpt, status);
    else if (outcome === "bounced") await session.bounced(rcpt, status);
    else await session.deferred(rcpt, status);
  }
}

/** The status= text of a successful delivery: the service, and the start of the command's output. */
export function successText(service: string, output: string): string {
  const shown = output.trimEnd().slice(0, successOutputLimit);
  return shown ? `delivered via ${service} service (${shown})` : `delivered via ${service} service`;
}

/** Delivers one request through the command. */
export async function deliverPipe(session: DeliverySession, s: PipeSettings): Promise<void> {
  const req = session.request;
  const attrs = s.attrs;
  const relay = s.service;
  // The pipe's own verdicts carry no diagnostic; a command's carry its
  // output as an x-unix Diagnostic-Code (Postfix's dsb_simple and dsb_unix).
  const status = (dsn: string, text: string): RecipientStatus => ({
    dsn,
    relay,
    text,
    diagType: "",
    diagText: "",
  });
  const commandStatus = (dsn: string, text: string, diagText: string): RecipientStatus => ({
    dsn,
    relay,
    text,
    diagType: "x-unix",
    diagText,
  });
  // Address verification and expansion (sendmail -bv): report what would
  // happen, never run the command.
  if (session.verifyOnly) {
    return decideAll(session, "sent", status("2.0.0", `delivers to command: ${attrs.argv[0]}`));
  }
  if (attrs.sizeLimit > 0 && req.dataSize > attrs.sizeLimit) {
    return decideAll(session, "bounced", status("5.2.3", "message too large"));
  }
  // One header per message cannot name several recipients.
  for (const [flag, letter] of [[PipeFlag.DELIVERED, "D"], [PipeFlag.ORIG_RCPT, "O"]]) {
    if (attrs.flags.has(flag) && req.recipients.length > 1) {
      await decideAll(session, "deferred", status("4.3.5", "mail system configuration error"));
      warn(`pipe flag \`${letter}' requires ${s.service}_destination_recipient_limit = 1`);
      return;
    }
  }
  let argv: string[];
  try {
    argv = expandArgv(attrs.argv, {
      flags: attrs.flags,
      sender: req.sender,
      nullSender: attrs.nullSender,
      nexthop: req.nexthop,
      size: req.dataSize,
      queueId: req.queueId,
      attrs: req.attrs,
      delimiters: s.delimiters,
    }, req.recipients);
  } catch (err) {
    if (!(err instanceof PipeMacroError)) throw err;
    warn(
      err.message.startsWith("unknown macro")
        ? `file ${s.masterCf}: service ${s.service}: ${err.message}`
        : err.message,
    );
    return decideAll(session, "deferred", status("4.3.5", "mail system configuration error"));
  }
  let content: MessageContent;
  try {
    content = readMessage(queueFilePath(s.layout, req.queueName, req.queueId), req.dataOffset);
  } catch (err) {
    warn(`${req.queueId}: read message content: ${(err as Error).message}`);
    return decideAll(session, "deferred", status("4.3.0", "error reading message file"));
  }
  const first = req.recipients[0];
  if (attrs.flags.has(PipeFlag.DELIVERED) && deliveredBefore(content, first.address)) {
    return decideAll(
      session,
      "bounced",
      status("5.4.6", `mail forwarding loop for ${first.address}`),
    );
  }
  const now = (s.now ?? (() => new Date()))();
  const input = pipeInput(attrs, content, envelopeLines(attrs, req.sender, first, now));
  const result = await runCommand({
    argv,
    uid: attrs.uid,
    gid: attrs.gid,
    stdin: input,
    // chroot= leaves the command at the new root unless directory= says otherwise.
    cwd: attrs.directory || (attrs.chroot ? undefined : s.queueDirectory),
    chroot: attrs.chroot || undefined,
    timeLimit: s.timeLimit,
    exportEnvironment: s.exportEnvironment,
    importEnvironment: s.importEnvironment,
    program: "pipe",
  });
  if (result.outcome === "sent") {
    const text = successText(s.service, result.output);
    // Without X the command only hands the message on: DSN "relayed".
    const action = attrs.flags.has(PipeFlag.FINAL) ? "delivered" : "relayed";
    return decideAll(session, "sent", { ...status("2.0.0", text), action });
  }
  return decideAll(
    session,
    result.outcome,
    commandStatus(result.dsn, result.text, result.diagText),
  );
}

/** Whether the message already has a Delivered-To: header for this recipient (case-insensitive). */
export function deliveredBefore(content: MessageContent, address: string): boolean {
  const want = [address.toLowerCase(), quoteAddress(address).toLowerCase()];
  return headerValues(content, "Delivered-To").some((v) => want.includes(v.toLowerCase()));
}
