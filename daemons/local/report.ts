// Reporting the outcomes of one recipient. A recipient that ends in one
// delivery is reported through DeliverySession as every agent does (log
// line, bounce/defer/trace log, the queue file's R marked D). One that an
// alias or .forward expands into several deliveries gets one log line per
// delivery, as Postfix's local(8) writes them, and is marked done only when
// none of them was deferred; a recipient passed to another transport
// (mailbox_transport, fallback_transport) was reported and marked by that
// agent, and only its outcome goes into the reply.

import type { DeliverySession, RecipientStatus } from "../../lib/deliver/agent.ts";
import { deliveryLogLine } from "../../lib/deliver/log_line.ts";
import type { DeliverRecipient, DeliverReply } from "../../lib/deliver/request.ts";
import { DeliverFlag } from "../../lib/deliver/request.ts";
import { actionFor, wantsNotice } from "../../lib/dsn/status.ts";
import { info } from "../../lib/log.ts";
import type { Leaf, LocalEnv, RecipientRun } from "./state.ts";

type Kind = "sent" | "bounced" | "deferred";

/** Outcomes the session did not decide itself, applied to its reply. */
export class ReplyFixes {
  readonly results = new Map<number, Kind>();
  traced = false;

  /** The session's reply with these outcomes in place. */
  apply(reply: DeliverReply): DeliverReply {
    for (const [offset, outcome] of this.results) reply.results.set(offset, outcome);
    if (this.traced) reply.traced = true;
    return reply;
  }
}

/** The recipient as logged for a delivery to `address`: the original address is kept as orig_to. */
export function leafRecipient(
  top: DeliverRecipient,
  address: string,
  notify?: number,
): DeliverRecipient {
  const rcpt = notify === undefined ? top : { ...top, notify };
  if (address === top.address) return rcpt;
  return { ...rcpt, address, origRcpt: top.origRcpt || top.address };
}

/** Writes a success notice entry that no delivery line goes with (an alias "expanded"). */
async function emitTrace(
  env: LocalEnv,
  session: DeliverySession,
  fixes: ReplyFixes,
  leaf: Extract<Leaf, { kind: "trace" }>,
  top: DeliverRecipient,
): Promise<void> {
  const rcpt = leafRecipient(top, leaf.address);
  const ok = await env.agent.bounce.append("trace", session.request.queueId, rcpt, {
    status: leaf.status.dsn,
    action: leaf.action,
    reason: `delivery via ${leaf.status.relay}: ${leaf.status.text}`,
    diagType: "",
    diagText: "",
    mtaType: "",
    mtaName: "",
  });
  if (ok) fixes.traced = true;
}

/** Logs and records one outcome without touching the queue file; returns the kind that stuck. */
async function emitDirect(
  env: LocalEnv,
  session: DeliverySession,
  fixes: ReplyFixes,
  rcpt: DeliverRecipient,
  kind: Kind,
  s: RecipientStatus,
): Promise<Kind> {
  const req = session.request;
  const dsn = (k: Kind, st: RecipientStatus, trace = false) => ({
    status: st.dsn,
    action: actionFor(k),
    // The trace log names the agent that delivered, as DeliverySession writes it.
    reason: trace && st.relay && st.relay !== "none"
      ? `delivery via ${st.relay}: ${st.text}`
      : st.text,
    diagType: st.diagType ?? "",
    diagText: st.diagText ?? "",
    mtaType: st.mtaType ?? "",
    mtaName: st.mtaName ?? "",
  });
  if (kind === "sent") {
    if (wantsNotice(rcpt.notify, "success") || (req.flags & DeliverFlag.RECORD)) {
      if (await env.agent.bounce.append("trace", req.queueId, rcpt, dsn(kind, s, true))) {
        fixes.traced = true;
      }
    }
  } else if (kind === "bounced") {
    if (!await env.agent.bounce.append("bounce", req.queueId, rcpt, dsn(kind, s))) {
      return emitDirect(env, session, fixes, rcpt, "deferred", {
        ...s,
        dsn: "4.3.0",
        text: "bounce or trace service failure",
        diagType: "",
        diagText: "",
      });
    }
  } else {
    await env.agent.bounce.append("defer", req.queueId, rcpt, dsn(kind, s));
  }
  const now = (env.agent.now ?? (() => Date.now() / 1000))();
  info(deliveryLogLine(
    {
      queueId: req.queueId,
      recipient: rcpt.address,
      origRecipient: rcpt.origRcpt,
      relay: s.relay,
      times: {
        arrival: req.arrival,
        active: req.active,
        agentStart: session.agentStart,
        connSetup: session.connSetup,
      },
      dsn: s.dsn,
      status: kind,
      text: s.text,
    },
    now,
    env.agent.resolution,
  ));
  return kind;
}

/** The outcomes after local_delivery_status_filter (a 4.x.x defers, a 5.x.x bounces). */
async function filtered(env: LocalEnv, leaves: Leaf[]): Promise<Leaf[]> {
  const filter = env.statusFilter;
  if (!filter) return leaves;
  const out: Leaf[] = [];
  for (const leaf of leaves) {
    if (leaf.kind !== "sent" && leaf.kind !== "bounced" && leaf.kind !== "deferred") {
      out.push(leaf);
      continue;
    }
    const { dsn, text } = await filter(leaf.status.dsn, leaf.status.text);
    const kind = dsn.startsWith("2") ? "sent" : dsn.startsWith("4") ? "deferred" : "bounced";
    out.push({ ...leaf, kind, status: { ...leaf.status, dsn, text } });
  }
  return out;
}

/** Reports every outcome of one recipient, as described above. */
export async function reportRecipient(run: RecipientRun, fixes: ReplyFixes): Promise<void> {
  const { env, session, top } = run;
  const traces = run.leaves.filter((l) => l.kind === "trace");
  if (!session.verifyOnly) {
    for (const t of traces) await emitTrace(env, session, fixes, t, top);
  }
  const delivered = await filtered(env, run.leaves.filter((l) => l.kind !== "trace"));
  const leaves: Leaf[] = delivered.length ? delivered : [{
    kind: "deferred",
    address: top.address,
    status: {
      dsn: "4.3.0",
      relay: env.settings.serviceName,
      text: "mail system configuration error",
    },
  }];
  // A probe reports one outcome per recipient, through the session (which
  // tells the verify service or the trace log instead of delivering).
  if (session.verifyOnly) leaves.splice(1);
  let deferred = false;
  let bounced = false;
  let passedDone = false;
  const note = (k: Kind) => {
    if (k === "deferred") deferred = true;
    if (k === "bounced") bounced = true;
  };
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    if (leaf.kind === "trace") continue;
    if (leaf.kind === "passed") {
      note(leaf.outcome);
      if (leaf.outcome !== "deferred") passedDone = true;
      continue;
    }
    const rcpt = leafRecipient(top, leaf.address, leaf.notify);
    const last = i === leaves.length - 1;
    if (last && !deferred && !passedDone) {
      // The final word goes through the session, which marks the recipient done.
      if (leaf.kind === "sent") await session.sent(rcpt, leaf.status);
      else if (leaf.kind === "bounced") await session.bounced(rcpt, leaf.status);
      else await session.deferred(rcpt, leaf.status);
      // qmgr sends the bounce notice for a recipient with any bounced delivery.
      if (bounced && leaf.kind === "sent") fixes.results.set(top.offset, "bounced");
      return;
    }
    note(await emitDirect(env, session, fixes, rcpt, leaf.kind, leaf.status));
  }
  // Passed to another agent (which marked the file), or some delivery deferred.
  fixes.results.set(top.offset, deferred ? "deferred" : bounced ? "bounced" : "sent");
}
