// Reading a queue file for the queue manager: the envelope (sender, arrival
// time, DSN ENVID/RET, request attributes, the W delay-warning record) and
// every recipient not yet done, with the offset of its R record so an agent
// can mark it D in place. Pointer records are followed, padding skipped.

import { RecordError, RecordReader, recordText, RecordType } from "../../lib/queue/record.ts";
import { parseNotify } from "../../lib/dsn/status.ts";
import { TRACE_FLAGS_MASK } from "../../lib/deliver/request.ts";

/** One recipient still to deliver. */
export interface QueuedRecipient {
  address: string;
  origRcpt: string;
  offset: number;
  dsnOrcpt: string;
  notify: number;
}

/** What qmgr knows about one message from its queue file. */
export interface QueuedMessage {
  queueId: string;
  /** The C record: content size, data offset, recipient count. */
  size: number;
  dataOffset: number;
  rcptCount: number;
  /** Arrival time (T record), seconds since the epoch. */
  arrival: number;
  sender: string;
  envid: string;
  ret: number;
  encoding: string;
  smtputf8: number;
  /** Delay-warning time (W record) and where it is, 0 when none or already sent. */
  warnTime: number;
  warnOffset: number;
  /** Request attributes (A records other than the per-recipient ones). */
  attrs: Record<string, string>;
  /** The content filter (L record: transport:nexthop), "" when none; the last one counts. */
  filter: string;
  /** The redirect address (> record), "" when none; the last one counts. */
  redirect: string;
  /** The trace_flags attribute (DEL_REQ_FLAG_MTA_VRFY, _USR_VRFY, _RECORD), and its record's offset (-1: none). */
  traceFlags: number;
  traceOffset: number;
  recipients: QueuedRecipient[];
  /** The VERP delimiters (the first V record), "" when the message asked for none. */
  verpDelims: string;
}

/** Attributes that describe the next recipient rather than the message. */
const recipientAttrs = new Set(["dsn_orig_rcpt", "notify_flags"]);

/** Parses a complete queue file's bytes (checked complete by the caller). */
export function parseQueuedMessage(queueId: string, data: Uint8Array): QueuedMessage {
  const msg: QueuedMessage = {
    queueId,
    size: 0,
    dataOffset: 0,
    rcptCount: 0,
    arrival: 0,
    sender: "",
    envid: "",
    ret: 0,
    encoding: "",
    smtputf8: 0,
    warnTime: 0,
    warnOffset: -1,
    attrs: {},
    filter: "",
    redirect: "",
    traceFlags: 0,
    traceOffset: -1,
    recipients: [],
    verpDelims: "",
  };
  const reader = new RecordReader(data);
  let orcpt = "";
  let dsnOrcpt = "";
  let notify = 0;
  let inContent = false;
  let sizeText: string | undefined;
  for (let rec = reader.next(); rec; rec = reader.next()) {
    const type = rec.type;
    if (type === RecordType.MESG) {
      inContent = true;
      continue;
    }
    if (inContent) {
      if (type === RecordType.XTRA) inContent = false;
      continue;
    }
    if (type === RecordType.END) break;
    const text = recordText(rec);
    switch (type) {
      case RecordType.SIZE: {
        sizeText = text;
        const f = text.trim().split(/\s+/).map(Number);
        msg.size = f[0] || 0;
        msg.dataOffset = f[1] || 0;
        msg.rcptCount = f[2] || 0;
        msg.smtputf8 = f[5] || 0;
        break;
      }
      case RecordType.TIME: {
        const [s, us] = text.trim().split(/\s+/).map(Number);
        msg.arrival = (s || 0) + (us || 0) / 1e6;
        break;
      }
      case RecordType.FROM:
        msg.sender = text;
        break;
      case RecordType.FILTER:
        msg.filter = text;
        break;
      case RecordType.VERP:
        if (!msg.verpDelims) msg.verpDelims = text;
        break;
      case RecordType.RDR:
        msg.redirect = text;
        break;
      case RecordType.WARN:
        msg.warnTime = Number(text.trim()) || 0;
        msg.warnOffset = rec.offset;
        break;
      case RecordType.DSN_ENVID:
        msg.envid = text;
        break;
      case RecordType.DSN_RET:
        msg.ret = Number(text) || 0;
        break;
      case RecordType.DSN_ORCPT:
        dsnOrcpt = text;
        break;
      case RecordType.DSN_NOTIFY:
        notify = parseNotify(text);
        break;
      case RecordType.ORCP:
        orcpt = text;
        break;
      case RecordType.ATTR: {
        const eq = text.indexOf("=");
        const name = eq < 0 ? text : text.slice(0, eq);
        const value = eq < 0 ? "" : text.slice(eq + 1);
        if (name === "dsn_orig_rcpt") dsnOrcpt = value;
        else if (name === "notify_flags") notify = parseNotify(value);
        else if (name === "dsn_envid") msg.envid = value;
        else if (name === "dsn_ret") msg.ret = Number(value) || 0;
        else if (name === "encoding") msg.encoding = value;
        else if (name === "trace_flags") {
          // The first one counts; a bad value is ignored, as Postfix's qmgr does.
          if (msg.traceOffset < 0 && /^\d+$/.test(value)) {
            msg.traceFlags = Number(value) & TRACE_FLAGS_MASK;
            msg.traceOffset = rec.offset;
          }
        } else if (!recipientAttrs.has(name)) msg.attrs[name] = value;
        break;
      }
      case RecordType.RCPT:
        msg.recipients.push({
          address: text,
          origRcpt: orcpt,
          offset: rec.offset,
          dsnOrcpt,
          notify,
        });
        orcpt = dsnOrcpt = "";
        notify = 0;
        break;
      case RecordType.DONE:
      case RecordType.DRCP:
        orcpt = dsnOrcpt = "";
        notify = 0;
        break;
    }
  }
  // As the reference's qmgr: the content must be where the size record says.
  if (
    sizeText === undefined || !(msg.dataOffset > 0 && msg.dataOffset < data.length) ||
    !(msg.size >= 0)
  ) {
    throw new RecordError(`invalid size record: ${sizeText ?? "(none)"}`);
  }
  return msg;
}

/** Rewrites the W record's value to -1 in place: the delay warning was sent (as the reference's qmgr). */
export function clearWarnRecord(path: string, msg: QueuedMessage): void {
  if (msg.warnOffset < 0) return;
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    // Type byte, one length byte (15 < 128), then 15 characters.
    file.seekSync(msg.warnOffset + 2, Deno.SeekMode.Start);
    file.writeSync(new TextEncoder().encode("-1".padStart(15, " ")));
    file.syncDataSync();
  } finally {
    file.close();
  }
  msg.warnTime = -1;
}

/**
 * Kills the trace_flags record in place (its type byte A becomes K): the
 * sendmail -v report was sent, later delivery attempts are not recorded
 * again (as the reference's qmgr).
 */
export function killTraceRecord(path: string, msg: QueuedMessage): void {
  if (msg.traceOffset < 0) return;
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    const type = new Uint8Array(1);
    file.seekSync(msg.traceOffset, Deno.SeekMode.Start);
    file.readSync(type);
    if (type[0] !== 0x41) return; // "A"
    file.seekSync(msg.traceOffset, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array([0x4b])); // "K"
    file.syncDataSync();
  } finally {
    file.close();
  }
  msg.traceOffset = -1;
}
