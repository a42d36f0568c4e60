// The delivery request protocol between qmgr and a delivery agent, over
// private/TRANSPORT in attribute lists (lib/ipc/attr.ts). Postfix's
// deliver_request attributes, in Posthorn's framing:
//
//   qmgr:  flags queue_name queue_id offset size nexthop encoding smtputf8
//          sender envid ret arrival active rcpt_count [attr.NAME...]
//   qmgr:  one list per recipient: orig_rcpt address offset dsn_orcpt notify
//   agent: status [hop_status hop_reason] result.OFFSET=sent|bounced|deferred
//          [trace=1]
//
// status 0: the agent handled every recipient (each one sent, bounced or
// deferred and logged to bounce/defer/trace); status 1 (DEL_STAT_DEFER):
// the destination failed as a whole (connection or handshake), which is
// negative feedback for qmgr's concurrency scheduler.

import type { AttrList } from "../ipc/attr.ts";

/** DEL_REQ_FLAG_* bits, with Postfix's values (deliver_request.h). */
export const DeliverFlag = {
  /** An address probe from the verify service: report deliverable/undeliverable to it, do not deliver. */
  MTA_VRFY: 1 << 8,
  /** An address probe from sendmail -bv: record what would happen in the trace log, do not deliver. */
  USR_VRFY: 1 << 9,
  /** Deliver and record each delivery in the trace log (sendmail -v). */
  RECORD: 1 << 10,
  /** The agent may take a session from the connection cache (DEL_REQ_FLAG_CONN_LOAD). */
  CONN_LOAD: 1 << 11,
  /** The agent may leave its session in the connection cache (DEL_REQ_FLAG_CONN_STORE). */
  CONN_STORE: 1 << 12,
  /** @deprecated Old name of MTA_VRFY. */
  VERIFY: 1 << 8,
  /** @deprecated Old name of USR_VRFY. */
  EXPAND: 1 << 9,
} as const;

/** The trace flags a message carries (the queue file's trace_flags attribute): DEL_REQ_TRACE_FLAGS_MASK. */
export const TRACE_FLAGS_MASK: number = DeliverFlag.MTA_VRFY | DeliverFlag.USR_VRFY |
  DeliverFlag.RECORD;

/** The flags of a request that only verifies: DEL_REQ_TRACE_ONLY_MASK. */
export const TRACE_ONLY_MASK: number = DeliverFlag.MTA_VRFY | DeliverFlag.USR_VRFY;

/** Reply status values. */
export const DeliverStatus = { OK: 0, DEFER: 1 } as const;

/** One recipient of a request. */
export interface DeliverRecipient {
  /** The original recipient (O record), "" when none. */
  origRcpt: string;
  address: string;
  /** Offset of the R record in the queue file: where the D goes. */
  offset: number;
  /** DSN ORCPT ("rfc822;addr"), "" when none. */
  dsnOrcpt: string;
  /** DSN NOTIFY bits, 0 when not specified. */
  notify: number;
}

/** A delivery request. */
export interface DeliverRequest {
  flags: number;
  queueName: string;
  queueId: string;
  /** Offset of the message content (M record + 1... as the C record says). */
  dataOffset: number;
  /** Message content size. */
  dataSize: number;
  nexthop: string;
  encoding: string;
  smtputf8: number;
  sender: string;
  envid: string;
  ret: number;
  /** Arrival and active-queue entry times, seconds since the epoch. */
  arrival: number;
  active: number;
  /** Request attributes (A records: rewrite_context, client_name, ...). */
  attrs: Record<string, string>;
  recipients: DeliverRecipient[];
}

/** What became of one recipient. */
export type RecipientOutcome = "sent" | "bounced" | "deferred";

/** A delivery agent's reply. */
export interface DeliverReply {
  status: number;
  /** The site-level status and reason when status is DEFER. */
  hopStatus: string;
  hopReason: string;
  /** Outcome by recipient offset. */
  results: Map<number, RecipientOutcome>;
  /** The agent wrote to the trace log (success notices to send). */
  traced: boolean;
}

/** The attribute lists of a request, header first. */
export function requestLists(req: DeliverRequest): Record<string, string | number>[] {
  const head: Record<string, string | number> = {
    flags: req.flags,
    queue_name: req.queueName,
    queue_id: req.queueId,
    offset: req.dataOffset,
    size: req.dataSize,
    nexthop: req.nexthop,
    encoding: req.encoding,
    smtputf8: req.smtputf8,
    sender: req.sender,
    envid: req.envid,
    ret: req.ret,
    arrival: req.arrival.toFixed(6),
    active: req.active.toFixed(6),
    rcpt_count: req.recipients.length,
  };
  for (const [name, value] of Object.entries(req.attrs)) head[`attr.${name}`] = value;
  const out = [head];
  for (const r of req.recipients) {
    out.push({
      orig_rcpt: r.origRcpt,
      address: r.address,
      offset: r.offset,
      dsn_orcpt: r.dsnOrcpt,
      notify: r.notify,
    });
  }
  return out;
}

/** A request that does not parse. */
export class DeliverProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeliverProtocolError";
  }
}

function num(list: AttrList, name: string): number {
  const v = Number(list.get(name) ?? "0");
  if (!Number.isFinite(v)) throw new DeliverProtocolError(`bad ${name} attribute`);
  return v;
}

/** Parses the header list of a request; recipients are added by the caller. */
export function parseRequestHead(list: AttrList): DeliverRequest & { rcptCount: number } {
  const queueId = list.get("queue_id") ?? "";
  if (!/^[0-9A-Za-z]+$/.test(queueId)) throw new DeliverProtocolError("bad queue_id attribute");
  const queueName = list.get("queue_name") ?? "";
  if (!/^[a-z]+$/.test(queueName)) throw new DeliverProtocolError("bad queue_name attribute");
  const attrs: Record<string, string> = {};
  for (const [name, value] of list) if (name.startsWith("attr.")) attrs[name.slice(5)] = value;
  const rcptCount = num(list, "rcpt_count");
  if (rcptCount < 1) throw new DeliverProtocolError("no recipients in delivery request");
  return {
    flags: num(list, "flags"),
    queueName,
    queueId,
    dataOffset: num(list, "offset"),
    dataSize: num(list, "size"),
    nexthop: list.get("nexthop") ?? "",
    encoding: list.get("encoding") ?? "",
    smtputf8: num(list, "smtputf8"),
    sender: list.get("sender") ?? "",
    envid: list.get("envid") ?? "",
    ret: num(list, "ret"),
    arrival: num(list, "arrival"),
    active: num(list, "active"),
    attrs,
    recipients: [],
    rcptCount,
  };
}

/** Parses one recipient list. */
export function parseRecipient(list: AttrList): DeliverRecipient {
  const address = list.get("address");
  if (address === undefined) throw new DeliverProtocolError("recipient without address");
  return {
    origRcpt: list.get("orig_rcpt") ?? "",
    address,
    offset: num(list, "offset"),
    dsnOrcpt: list.get("dsn_orcpt") ?? "",
    notify: num(list, "notify"),
  };
}

/** The reply as one attribute list. */
export function replyList(reply: DeliverReply): Record<string, string | number> {
  const out: Record<string, string | number> = { status: reply.status };
  if (reply.hopStatus) out.hop_status = reply.hopStatus;
  if (reply.hopReason) out.hop_reason = reply.hopReason;
  if (reply.traced) out.trace = 1;
  for (const [offset, outcome] of reply.results) out[`result.${offset}`] = outcome;
  return out;
}

/** Parses a reply list. */
export function parseReply(list: AttrList): DeliverReply {
  const results = new Map<number, RecipientOutcome>();
  for (const [name, value] of list) {
    if (!name.startsWith("result.")) continue;
    if (value === "sent" || value === "bounced" || value === "deferred") {
      results.set(Number(name.slice(7)), value);
    }
  }
  const status = Number(list.get("status") ?? "");
  if (!Number.isFinite(status) || !list.has("status")) {
    throw new DeliverProtocolError("reply without status");
  }
  return {
    status,
    hopStatus: list.get("hop_status") ?? "",
    hopReason: list.get("hop_reason") ?? "",
    results,
    traced: list.get("trace") === "1",
  };
}
