// The bounce daemon's requests (lib/bounce_client.ts names them): append a
// recipient to a per-message log; turn a log into notices — non-delivery
// (bounce log, or defer log once the message expired), delay warning (defer
// log), success (trace log) — sent to the sender and, per notify_classes,
// as headers-only copies to the postmaster, through the cleanup service.
// Notices about a null-sender message go to 2bounce_notice_recipient (class
// 2bounce) or are dropped; mail from double_bounce_sender is never answered.
//
// request=verp (log bounce or defer, with verp_delims) is the flush of a
// VERP message: one notice per failed recipient, each to that recipient's
// VERP sender (owner-list+user=domain@origin), and with notify_classes
// bounce a postmaster copy per recipient, as Postfix's bounce_flush_verp.

import type { AttrList } from "../../lib/ipc/attr.ts";
import { info, warn } from "../../lib/log.ts";
import { checkComplete } from "../../lib/queue/file.ts";
import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { RecordReader, RecordType } from "../../lib/queue/record.ts";
import { buildReport, type ReportTemplate } from "../../lib/dsn/report.ts";
import { DsnRet, wantsNotice } from "../../lib/dsn/status.ts";
import { appendEntry, type LogEntry, logPath, readLog } from "./log_file.ts";
import { verpSender } from "../../lib/verp.ts";
import type { TemplateName } from "./templates.ts";

/** What the service needs; `submit` queues one notice and returns its queue id. */
export interface BounceEnv {
  layout: QueueLayout;
  myhostname: string;
  notifyClasses: Set<string>;
  bounceNoticeRecipient: string;
  twoBounceNoticeRecipient: string;
  delayNoticeRecipient: string;
  doubleBounceSender: string;
  bounceSizeLimit: number;
  maximalQueueLifetime: number;
  templates: Record<TemplateName, ReportTemplate>;
  submit(sender: string, recipient: string, lines: string[]): Promise<string>;
  now?: () => Date;
}

/** The message a flush or warn request is about. */
interface NoticeMessage {
  queueName: string;
  queueId: string;
  sender: string;
  envid: string;
  ret: number;
}

/** The original message from its queue file: headers, body, size, arrival. */
interface Original {
  headers: string[];
  body: string[];
  size: number;
  arrival: Date;
  eightBit: boolean;
  /** The trace_flags attribute (sendmail -bv 512, sendmail -v 1024), 0 when none. */
  traceFlags: number;
}

const dec = new TextDecoder();

/** Reads the message content of a queue file; null when the file is gone. */
export function readOriginal(path: string): Original | null {
  let data: Uint8Array;
  try {
    // Not readQueueFile: cleanup bounces a refused message from its file in
    // incoming before that file is ever marked complete (Postfix's bounce
    // reads it as it is, too); the records must still parse to the end.
    data = Deno.readFileSync(path);
    checkComplete(data, path);
  } catch {
    return null;
  }
  const reader = new RecordReader(data);
  const headers: string[] = [];
  const body: string[] = [];
  let inHeaders = true;
  let inContent = false;
  let partial = "";
  let size = 0;
  let arrival = 0;
  let eightBit = false;
  let traceFlags = 0;
  for (let rec = reader.next(); rec; rec = reader.next()) {
    if (!inContent) {
      if (rec.type === RecordType.ATTR) {
        const m = /^trace_flags=(\d+)$/.exec(dec.decode(rec.data));
        if (m && !traceFlags) traceFlags = Number(m[1]);
      }
      if (rec.type === RecordType.TIME) arrival = Number(dec.decode(rec.data).split(" ")[0]) || 0;
      if (rec.type === RecordType.SIZE) {
        size = Number(dec.decode(rec.data).trim().split(/\s+/)[0]) || 0;
      }
      if (rec.type === RecordType.MESG) inContent = true;
      continue;
    }
    if (rec.type === RecordType.XTRA || rec.type === RecordType.END) break;
    if (rec.data.some((b) => b > 0x7f)) eightBit = true;
    const text = dec.decode(rec.data);
    if (rec.type === RecordType.CONT) {
      partial += text;
      continue;
    }
    if (rec.type !== RecordType.NORM) continue;
    const line = partial + text;
    partial = "";
    if (inHeaders && line === "") {
      inHeaders = false;
      continue;
    }
    (inHeaders ? headers : body).push(line);
  }
  return { headers, body, size, arrival: new Date(arrival * 1000), eightBit, traceFlags };
}

/** Handles one request list; returns the reply status (0 done). */
export async function handleBounceRequest(
  env: BounceEnv,
  req: AttrList,
  defaultLog: string,
): Promise<number> {
  const request = req.get("request") ?? "";
  const log = req.get("log") || defaultLog;
  const queueId = req.get("queue_id") ?? "";
  if (!/^[0-9A-Za-z]+$/.test(queueId) || !["bounce", "defer", "trace"].includes(log)) {
    warn(`bad ${request || "bounce"} request: queue_id=${queueId} log=${log}`);
    return -1;
  }
  if (request === "append") {
    appendEntry(logPath(env.layout, log, queueId), entryFrom(req));
    return 0;
  }
  const queueName = req.get("queue_name") ?? "";
  if (!/^[a-z]+$/.test(queueName)) {
    warn(`${queueId}: bad queue name: ${queueName}`);
    return -1;
  }
  const msg: NoticeMessage = {
    queueName,
    queueId,
    sender: req.get("sender") ?? "",
    envid: req.get("envid") ?? "",
    ret: Number(req.get("ret") ?? "0") || 0,
  };
  if (request === "flush") return await flush(env, log, msg);
  if (request === "verp" && log !== "trace") {
    const delims = req.get("verp_delims") ?? "";
    if (delims.length !== 2) {
      warn(`${queueId}: bad VERP delimiters: "${delims.slice(0, 100)}"`);
      return -1;
    }
    return await flush(env, log, msg, delims);
  }
  if (request === "warn" && log === "defer") return await delayWarning(env, msg);
  warn(`${queueId}: unknown request: ${request}`);
  return -1;
}

function entryFrom(req: AttrList): LogEntry {
  const g = (n: string) => req.get(n) ?? "";
  return {
    origRcpt: g("orig_rcpt"),
    address: g("recipient"),
    offset: Number(g("offset")) || 0,
    dsnOrcpt: g("dsn_orig_rcpt"),
    notify: Number(g("notify_flags")) || 0,
    status: g("status"),
    diagType: g("diag_type"),
    diagText: g("diag_text"),
    mtaType: g("mta_type"),
    mtaName: g("mta_name"),
    action: g("action"),
    reason: g("reason"),
  };
}

/**
 * bounce: non-delivery notice; defer: the same for an expired message;
 * trace: success notice. With VERP delimiters, a notice per recipient.
 */
async function flush(
  env: BounceEnv,
  log: string,
  msg: NoticeMessage,
  verp = "",
): Promise<number> {
  const path = logPath(env.layout, log, msg.queueId);
  const entries = readLog(path);
  if (!entries) return 0;
  const original = readOriginal(queueFilePath(env.layout, msg.queueName, msg.queueId));
  let ok: boolean;
  if (log === "trace") {
    ok = (original?.traceFlags ?? 0) & reportFlags
      ? await deliveryReport(env, msg, entries, original)
      : await success(env, msg, entries, original);
  } else {
    // An expired message's delayed recipients are failed now.
    const failed = entries.map((e) => (log === "defer" ? { ...e, action: "failed" } : e));
    ok = verp
      ? await verpFailure(env, msg, failed, original, verp)
      : await failure(env, msg, failed, original);
  }
  if (!ok) return -1;
  try {
    Deno.removeSync(path);
  } catch {
    // Removed by someone else.
  }
  return 0;
}

/** The notices for failed recipients. */
async function failure(
  env: BounceEnv,
  msg: NoticeMessage,
  entries: LogEntry[],
  original: Original | null,
): Promise<boolean> {
  const returnBody = msg.ret !== DsnRet.HDRS && (original?.size ?? 0) <= env.bounceSizeLimit;
  if (msg.sender === "") {
    // A bounce that cannot be delivered: the postmaster's problem, or nobody's.
    if (!env.notifyClasses.has("2bounce")) {
      info(`${msg.queueId}: undeliverable postmaster notification discarded`);
      return true;
    }
    return await send(env, msg, "failure", entries, original, {
      to: env.twoBounceNoticeRecipient,
      sender: doubleBounceAddress(env),
      postmaster: true,
      returnBody: false,
      what: "postmaster non-delivery notification",
    });
  }
  if (isDoubleBounceSender(env, msg.sender)) {
    info(`${msg.queueId}: undeliverable postmaster notification discarded`);
    return true;
  }
  const wanted = entries.filter((e) => wantsNotice(e.notify, "failure"));
  if (wanted.length) {
    const ok = await send(env, msg, "failure", wanted, original, {
      to: msg.sender,
      sender: "",
      postmaster: false,
      returnBody,
      what: "sender non-delivery notification",
    });
    if (!ok) return false;
  }
  if (env.notifyClasses.has("bounce")) {
    await send(env, msg, "failure", entries, original, {
      to: env.bounceNoticeRecipient,
      sender: doubleBounceAddress(env),
      postmaster: true,
      returnBody: false,
      what: "postmaster non-delivery notification",
    });
  }
  return true;
}

/**
 * The notices of a VERP message: each failed recipient gets its own, sent
 * to the VERP sender made from that recipient (its original address when
 * there is one); the postmaster copies (notify_classes bounce) go one per
 * recipient too, logged only where the sender got none, as the
 * reference's. A null or
 * double-bounce sender is handled as without VERP.
 */
async function verpFailure(
  env: BounceEnv,
  msg: NoticeMessage,
  entries: LogEntry[],
  original: Original | null,
  delims: string,
): Promise<boolean> {
  if (msg.sender === "" || isDoubleBounceSender(env, msg.sender)) {
    return await failure(env, msg, entries, original);
  }
  const returnBody = msg.ret !== DsnRet.HDRS && (original?.size ?? 0) <= env.bounceSizeLimit;
  for (const entry of entries) {
    const toSender = wantsNotice(entry.notify, "failure");
    if (toSender) {
      const ok = await send(env, msg, "failure", [entry], original, {
        to: verpSender(delims, msg.sender, entry),
        sender: "",
        postmaster: false,
        returnBody,
        what: "sender non-delivery notification",
      });
      if (!ok) return false;
    }
    if (env.notifyClasses.has("bounce")) {
      await send(env, msg, "failure", [entry], original, {
        to: env.bounceNoticeRecipient,
        sender: doubleBounceAddress(env),
        postmaster: true,
        returnBody: false,
        what: "postmaster non-delivery notification",
        // The reference logs one notice per recipient: the sender's when there is one.
        silent: toSender,
      });
    }
  }
  return true;
}

/** warn: the delay notice from the defer log (the log stays). */
async function delayWarning(env: BounceEnv, msg: NoticeMessage): Promise<number> {
  const entries = readLog(logPath(env.layout, "defer", msg.queueId));
  if (!entries) return 0;
  const original = readOriginal(queueFilePath(env.layout, msg.queueName, msg.queueId));
  const delayed = entries.map((e) => ({ ...e, action: "delayed" }));
  const wanted = delayed.filter((e) => wantsNotice(e.notify, "delay"));
  if (msg.sender !== "" && !isDoubleBounceSender(env, msg.sender) && wanted.length) {
    const ok = await send(env, msg, "delay", wanted, original, {
      to: msg.sender,
      sender: "",
      postmaster: false,
      returnBody: false,
      what: "sender delay notification",
    });
    if (!ok) return -1;
  }
  if (env.notifyClasses.has("delay")) {
    await send(env, msg, "delay", delayed, original, {
      to: env.delayNoticeRecipient,
      sender: doubleBounceAddress(env),
      postmaster: true,
      returnBody: false,
      what: "postmaster delay notification",
    });
  }
  return 0;
}

/** Trace and success notices never go to the null sender or double_bounce_sender (logged as the reference does). */
function noticeWanted(env: BounceEnv, msg: NoticeMessage): boolean {
  const kind = msg.sender === ""
    ? "single-bounce"
    : isDoubleBounceSender(env, msg.sender)
    ? "double-bounce"
    : "";
  if (kind) info(`${msg.queueId}: not sending trace/success notification for ${kind} message`);
  return !kind;
}

/** DEL_REQ_FLAG_USR_VRFY (sendmail -bv) and DEL_REQ_FLAG_RECORD (sendmail -v): the sender asked for a report. */
const reportFlags = (1 << 9) | (1 << 10);

/**
 * The report sendmail -bv and -v ask for ("Mail Delivery Status Report",
 * the verify template): every recipient the trace log holds, whatever
 * became of it, to the sender; headers only.
 */
async function deliveryReport(
  env: BounceEnv,
  msg: NoticeMessage,
  entries: LogEntry[],
  original: Original | null,
): Promise<boolean> {
  if (!noticeWanted(env, msg)) return true;
  return await send(env, msg, "verify", entries, original, {
    to: msg.sender,
    sender: "",
    postmaster: false,
    returnBody: false,
    what: "sender delivery status notification",
  });
}

/** The success notice for NOTIFY=SUCCESS recipients. */
async function success(
  env: BounceEnv,
  msg: NoticeMessage,
  entries: LogEntry[],
  original: Original | null,
): Promise<boolean> {
  const wanted = entries.filter((e) => wantsNotice(e.notify, "success"));
  if (!wanted.length || !noticeWanted(env, msg)) return true;
  return await send(env, msg, "success", wanted, original, {
    to: msg.sender,
    sender: "",
    postmaster: false,
    returnBody: false,
    what: "sender delivery status notification",
  });
}

/** The sender of postmaster notices: double_bounce_sender@myhostname, as the reference writes it. */
function doubleBounceAddress(env: BounceEnv): string {
  return env.doubleBounceSender.includes("@")
    ? env.doubleBounceSender
    : `${env.doubleBounceSender}@${env.myhostname}`;
}

function isDoubleBounceSender(env: BounceEnv, sender: string): boolean {
  const at = sender.lastIndexOf("@");
  const local = (at < 0 ? sender : sender.slice(0, at)).toLowerCase();
  return local === env.doubleBounceSender.toLowerCase();
}

/** Builds and queues one notice; logs `ID: WHAT: NEWID`. */
async function send(
  env: BounceEnv,
  msg: NoticeMessage,
  kind: TemplateName,
  entries: LogEntry[],
  original: Original | null,
  how: {
    to: string;
    sender: string;
    postmaster: boolean;
    returnBody: boolean;
    what: string;
    /** No log line when it went out (only a failure is logged). */
    silent?: boolean;
  },
): Promise<boolean> {
  const now = env.now?.() ?? new Date();
  const arrival = original?.arrival ?? now;
  const lines = buildReport({
    kind,
    template: env.templates[kind],
    postmasterCopy: how.postmaster,
    queueId: msg.queueId,
    myhostname: env.myhostname,
    sender: msg.sender,
    to: how.to,
    arrival,
    now,
    envid: msg.envid,
    retryUntil: kind === "delay"
      ? new Date(arrival.getTime() + env.maximalQueueLifetime * 1000)
      : undefined,
    recipients: entries,
    original: original ? { headers: original.headers, body: original.body } : null,
    returnBody: how.returnBody,
    boundary: `${msg.queueId}.${Math.floor(now.getTime() / 1000)}/${env.myhostname}`,
    eightBit: (original?.eightBit ?? false) ||
      env.templates[kind].charset.toLowerCase() !== "us-ascii",
  });
  try {
    const id = await env.submit(how.sender, how.to, lines);
    if (!how.silent) info(`${msg.queueId}: ${how.what}: ${id}`);
    return true;
  } catch (err) {
    warn(`${msg.queueId}: ${how.what} failed: ${(err as Error).message}`);
    return false;
  }
}
