// virtual: the virtual domain mail delivery agent, as Postfix's virtual(8).
//
// Delivers each recipient of a delivery request to the mailbox that
// virtual_mailbox_maps names for the full recipient address (under
// virtual_mailbox_base): a UNIX mbox file, locked per virtual_mailbox_lock,
// or a maildir when the name ends in "/". Files are written as the uid and
// gid that virtual_uid_maps and virtual_gid_maps give (static: tables
// allowed), never below virtual_minimum_uid. Unknown recipients bounce
// (5.1.1), table trouble defers (4.3.5), mailbox trouble bounces or defers
// by its DSN code, as virtual(8) describes.

import type { ProgramContext } from "../../lib/program.ts";
import { multiServer } from "../../lib/daemon/server.ts";
import {
  agentConcurrency,
  agentEnvFromConfig,
  type DeliverySession,
  handleDeliveryConnection,
  type RecipientStatus,
} from "../../lib/deliver/agent.ts";
import { DeliverFlag, type DeliverRecipient } from "../../lib/deliver/request.ts";
import { type MessageContent, readMessage } from "../../lib/deliver/message.ts";
import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { fatal, warn } from "../../lib/log.ts";
import { quoteAddress } from "../../lib/address/quote.ts";
import { searchRelocated } from "../../maps/mod.ts";
import {
  appendToMailbox,
  deliverToMaildir,
  type MailboxResult,
  mboxMessage,
  openMailbox,
} from "../../lib/mailbox/mod.ts";
import { type NamedTables, settingsFromConfig, type VirtualSettings } from "./settings.ts";

export { settingsFromConfig, type VirtualSettings } from "./settings.ts";

/** What a recipient's delivery came to. */
type Outcome = { kind: "sent" | "bounced" | "deferred"; dsn: string; text: string };

const EACCES = 13;

/** Delivers every recipient of one request; the queue file is found under `layout`. */
export async function deliverVirtual(
  session: DeliverySession,
  settings: VirtualSettings,
  layout: QueueLayout,
): Promise<void> {
  const req = session.request;
  let content: MessageContent;
  try {
    content = readMessage(queueFilePath(layout, req.queueName, req.queueId), req.dataOffset);
  } catch (err) {
    warn(`${req.queueId}: error reading message: ${(err as Error).message}`);
    for (const rcpt of req.recipients) {
      await report(session, rcpt, {
        kind: "deferred",
        dsn: "4.3.0",
        text: `error reading message: ${(err as Error).message}`,
      });
    }
    return;
  }
  for (const rcpt of req.recipients) {
    const outcome = await deliverRecipient(session, settings, content, rcpt);
    await report(session, rcpt, outcome);
  }
}

async function report(session: DeliverySession, rcpt: DeliverRecipient, o: Outcome) {
  const status: RecipientStatus = { dsn: o.dsn, relay: "virtual", text: o.text };
  if (o.kind !== "sent") {
    status.diagType = "X-Postfix";
    status.diagText = o.text;
  }
  if (o.kind === "sent") await session.sent(rcpt, status);
  else if (o.kind === "bounced") await session.bounced(rcpt, status);
  else await session.deferred(rcpt, status);
}

/** By the first digit of its code: 4.x.x defers, anything else bounces. */
function failed(dsn: string, text: string): Outcome {
  return { kind: dsn.startsWith("4") ? "deferred" : "bounced", dsn, text };
}

const configError: Outcome = {
  kind: "deferred",
  dsn: "4.3.5",
  text: "mail system configuration error",
};

/** atol(3): leading white space, a sign, digits; 0 when there are none. */
function atol(text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** A lookup in the address-map order virtual(8) uses: user+ext@domain, user@domain, @domain. */
async function find(
  maps: NamedTables,
  user: string,
  settings: VirtualSettings,
): Promise<{ value?: string; error?: true }> {
  try {
    const hit = await searchRelocated(maps.tables, user, {
      recipientDelimiter: settings.recipientDelimiter,
      isLocalDomain: () => false,
    });
    return { value: hit?.value };
  } catch (err) {
    warn(`table ${maps.title}: lookup ${user}: ${(err as Error).message}`);
    return { error: true };
  }
}

async function deliverRecipient(
  session: DeliverySession,
  settings: VirtualSettings,
  content: MessageContent,
  rcpt: DeliverRecipient,
): Promise<Outcome> {
  // No Delivered-To loop check: the reference's virtual(8) has none (it
  // delivers a message that already carries the recipient's Delivered-To;
  // loops through virtual aliases are cleanup's and local's business).
  const user = rcpt.address.toLowerCase();
  if (!settings.mailboxBase.startsWith("/")) {
    fatal(`do not specify relative pathname: virtual_mailbox_base = ${settings.mailboxBase}`);
  }
  const mailbox = await find(settings.mailboxMaps, user, settings);
  if (mailbox.error) return configError;
  if (mailbox.value === undefined) {
    return { kind: "bounced", dsn: "5.1.1", text: `unknown user: "${user}"` };
  }
  const path = `${settings.mailboxBase}/${mailbox.value}`;
  const uid = await find(settings.uidMaps, user, settings);
  if (uid.error) return configError;
  if (uid.value === undefined) {
    warn(`recipient ${user}: not found in ${settings.uidMaps.title}`);
    return configError;
  }
  if (atol(uid.value) < settings.minimumUid) {
    warn(`recipient ${user}: bad uid ${uid.value} in ${settings.uidMaps.title}`);
    return configError;
  }
  const gid = await find(settings.gidMaps, user, settings);
  if (gid.error) return configError;
  if (gid.value === undefined) {
    warn(`recipient ${user}: not found in ${settings.gidMaps.title}`);
    return configError;
  }
  if (atol(gid.value) <= 0) {
    warn(`recipient ${user}: bad gid ${gid.value} in ${settings.gidMaps.title}`);
    return configError;
  }
  const identity = { uid: atol(uid.value), gid: atol(gid.value) };
  const maildir = path.endsWith("/");
  // Address probes (verify, sendmail -bv) are answered without delivering.
  if (session.request.flags & (DeliverFlag.MTA_VRFY | DeliverFlag.USR_VRFY)) {
    return {
      kind: "sent",
      dsn: "2.0.0",
      text: maildir ? "delivers to maildir" : "delivers to mailbox",
    };
  }
  const prepend = prependedHeaders(session.request.sender, rcpt);
  return maildir
    ? toMaildir(settings, path, identity, content, prepend)
    : await toMbox(settings, path, identity, content, prepend, rcpt, session.request.sender);
}

/** Return-Path:, X-Original-To: (when the original recipient is known), Delivered-To:. */
function prependedHeaders(sender: string, rcpt: DeliverRecipient): string[] {
  const headers = [`Return-Path: <${quoteAddress(sender)}>`];
  if (rcpt.origRcpt) headers.push(`X-Original-To: ${quoteAddress(rcpt.origRcpt)}`);
  headers.push(`Delivered-To: ${quoteAddress(rcpt.address)}`);
  return headers;
}

function toMaildir(
  settings: VirtualSettings,
  path: string,
  identity: { uid: number; gid: number },
  content: MessageContent,
  prepend: string[],
): Outcome {
  const r: MailboxResult = deliverToMaildir({
    dir: path,
    content,
    prepend,
    sizeLimit: settings.mailboxLimit,
    identity,
    hostname: settings.hostname,
  });
  if (r.ok) return { kind: "sent", dsn: "2.0.0", text: "delivered to maildir" };
  if (r.errno === EACCES) {
    warn(`maildir access problem for UID/GID=${identity.uid}/${identity.gid}: ${r.text}`);
    warn("perhaps you need to create the maildirs in advance");
  }
  return failed(r.dsn, `maildir delivery failed: ${r.text}`);
}

async function toMbox(
  settings: VirtualSettings,
  path: string,
  identity: { uid: number; gid: number },
  content: MessageContent,
  prepend: string[],
  rcpt: DeliverRecipient,
  sender: string,
): Promise<Outcome> {
  const opened = await openMailbox(path, {
    styles: settings.lockStyles,
    attempts: settings.lockAttempts,
    delay: settings.lockDelay,
    staleTime: settings.staleLockTime,
    identity,
    defaultDsn: "4.2.0",
  });
  const prefix = `delivery failed to mailbox ${path}: `;
  if (!opened.ok) return failed(opened.dsn, prefix + opened.text);
  const mailbox = opened.mailbox;
  try {
    if (!mailbox.info.isFile) {
      warn(`recipient ${rcpt.address}: destination ${path} is not a regular file`);
      return failed("5.3.5", prefix + "mail system configuration error");
    }
    if (settings.strictOwnership && mailbox.info.uid !== identity.uid) {
      warn('specify "strict_mailbox_ownership = no" to ignore mailbox ownership mismatch');
      return failed("4.2.0", prefix + `destination ${path} is not owned by recipient`);
    }
    const data = mboxMessage(content, { sender, prepend });
    const r = appendToMailbox(mailbox, data, settings.mailboxLimit);
    if (r.ok) return { kind: "sent", dsn: "2.0.0", text: "delivered to mailbox" };
    return failed(r.dsn, prefix + r.text);
  } finally {
    mailbox.release();
  }
}

/** Runs the virtual delivery service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: ReturnType<typeof agentEnvFromConfig>;
  let settings: VirtualSettings;
  return multiServer(
    args,
    ctx,
    (conn) => handleDeliveryConnection(conn, env, (s) => deliverVirtual(s, settings, env.layout)),
    {
      // File work runs in synchronous sections as each recipient; only lock
      // waits yield, so one process serves every request qmgr sends.
      concurrency: agentConcurrency,
      init(d) {
        env = agentEnvFromConfig(d.config);
        settings = settingsFromConfig(d.config);
      },
    },
  );
}
