// Forwarding: addresses that an alias or .forward expansion resolves to
// another transport are re-submitted as a new message through cleanup, one
// per envelope sender, so each has its own queue file and delivery status
// (local(8) MAIL FORWARDING). The copy gets a Delivered-To: header (per
// prepend_delivered_header) for loop detection, keeps the original
// content, and is logged as "forwarded as QUEUEID".

import { CleanupClient, CleanupRequestFlag } from "../../lib/cleanup_client.ts";
import { clockMicros } from "../../lib/queue/file.ts";
import { RecordType } from "../../lib/queue/record.ts";
import { quoteAddress } from "../../lib/address/quote.ts";
import { warn } from "../../lib/log.ts";
import { DsnNotify } from "../../lib/dsn/status.ts";
import { rfc822Date } from "../../lib/dsn/report.ts";
import type { ForwardRcpt, RecipientRun } from "./state.ts";

/** Submits one forwarded copy; returns the new queue id. */
/**
 * RFC 3461 6.2 as Postfix applies it: a forwarded copy keeps the NOTIFY
 * request without SUCCESS (SUCCESS alone becomes NEVER); a list's copy
 * (owner- alias, new envelope sender) keeps no ENVID, RET or ORCPT.
 */
function forwardedNotify(notify: number): number {
  if (!notify) return 0;
  const left = notify & ~DsnNotify.SUCCESS;
  return left || DsnNotify.NEVER;
}

async function submitCopy(
  run: RecipientRun,
  sender: string,
  rcpts: ForwardRcpt[],
): Promise<string> {
  const list = rcpts[0].list;
  const s = run.env.settings;
  const req = run.session.request;
  const client = await CleanupClient.open(s.cleanupService, CleanupRequestFlag.MAP_OK);
  try {
    const { seconds, usec } = clockMicros();
    await client.record(RecordType.TIME, `${seconds} ${usec}`);
    await client.record(RecordType.ATTR, "rewrite_context=local");
    await client.record(RecordType.ATTR, `log_ident=${req.queueId}`);
    if (req.envid && !list) await client.record(RecordType.DSN_ENVID, req.envid);
    if (req.ret && !list) await client.record(RecordType.DSN_RET, String(req.ret));
    await client.record(RecordType.FROM, sender);
    for (const r of rcpts) {
      if (s.enableOriginalRecipient && r.orig) await client.record(RecordType.ORCP, r.orig);
      if (run.top.dsnOrcpt && !list) {
        await client.record(RecordType.DSN_ORCPT, run.top.dsnOrcpt);
      }
      const notify = forwardedNotify(run.top.notify);
      if (notify) await client.record(RecordType.DSN_NOTIFY, String(notify));
      await client.record(RecordType.RCPT, r.address);
    }
    await client.record(RecordType.MESG, "");
    // The forwarder's own Received: line, with the new queue id, as Postfix writes it.
    await client.record(RecordType.NORM, `Received: by ${s.myhostname} (${s.mailName})`);
    await client.record(RecordType.NORM, `\tid ${client.queueId}; ${rfc822Date(new Date())}`);
    // One copy has one Delivered-To: all its recipients share the expansion's address.
    if (s.prependDeliveredHeader.has("forward")) {
      await client.record(
        RecordType.NORM,
        `Delivered-To: ${quoteAddress(rcpts[0].delivered).toLowerCase()}`,
      );
    }
    for (const line of run.content.header) await client.record(RecordType.NORM, line);
    if (run.content.separated) await client.record(RecordType.NORM, "");
    for (const line of run.content.body) await client.record(RecordType.NORM, line);
    await client.record(RecordType.XTRA, "");
    await client.record(RecordType.END, "");
    const reply = await client.finish();
    if (reply.status !== 0) throw new Error(reply.reason || `cleanup status ${reply.status}`);
    return client.queueId;
  } finally {
    client.close();
  }
}

/**
 * Sends the forwarded copies of one recipient, unless a delivery of it was
 * deferred (the whole recipient is then tried again later, forwarding
 * included), and records each forwarded address's outcome.
 */
export async function finishForwards(run: RecipientRun): Promise<void> {
  if (!run.forwards.size) return;
  const relay = run.env.settings.serviceName;
  if (
    run.leaves.some((l) =>
      l.kind === "deferred" || (l.kind === "passed" && l.outcome === "deferred")
    )
  ) {
    run.forwards.clear();
    return;
  }
  if (run.session.verifyOnly) {
    for (const rcpts of run.forwards.values()) {
      for (const r of rcpts) {
        run.leaves.push({
          kind: "sent",
          address: run.top.address,
          status: { dsn: "2.0.0", relay, text: `forwards to ${r.address}` },
        });
      }
    }
    run.forwards.clear();
    return;
  }
  for (const [sender, rcpts] of run.forwards) {
    // Recipients with different Delivered-To addresses go in separate copies.
    const byDelivered = new Map<string, ForwardRcpt[]>();
    for (const r of rcpts) {
      const key = `${r.delivered.toLowerCase()} ${r.list}`;
      byDelivered.set(key, [...(byDelivered.get(key) ?? []), r]);
    }
    for (const group of byDelivered.values()) {
      let text: string;
      let ok = true;
      try {
        text = `forwarded as ${await submitCopy(run, sender, group)}`;
      } catch (err) {
        warn(`${run.session.request.queueId}: forward: ${(err as Error).message}`);
        text = "unable to forward message";
        ok = false;
      }
      // One line per copy, naming the recipient being delivered.
      run.leaves.push({
        kind: ok ? "sent" : "deferred",
        address: run.top.address,
        status: { dsn: ok ? "2.0.0" : "4.3.0", relay, text },
      });
    }
  }
  run.forwards.clear();
}
