// How delivery agents and qmgr tell the bounce daemon (serving bounce,
// defer and trace) about recipients, as Postfix's bounce_append(),
// defer_append(), trace_append(), bounce_flush(), defer_flush(),
// defer_warn() and trace_flush(). One attribute list per request over
// private/bounce, private/defer or private/trace; the reply is `status`
// (0 done, non-zero failed).
//
//   request=append log=bounce|defer|trace queue_id=ID  + the recipient and
//       DSN attributes of the per-message logfile (bounce(5)-style lines)
//   request=flush log=bounce   non-delivery notice from bounce/ID
//   request=flush log=defer    non-delivery notice from defer/ID (expired)
//   request=warn  log=defer    delay notice from defer/ID
//   request=flush log=trace    success notice (and sendmail -v report)
//   request=verp log=bounce|defer verp_delims=xy
//                              per-recipient non-delivery notices of a VERP
//                              message, each to its recipient's VERP sender

import { AttrReader, encodeAttrs } from "./ipc/attr.ts";
import type { DsnStatus } from "./dsn/status.ts";

/** Which per-message log a request is about. */
export type BounceLog = "bounce" | "defer" | "trace";

/** A recipient as the per-message logs record it. */
export interface BounceRecipient {
  origRcpt: string;
  address: string;
  offset: number;
  dsnOrcpt: string;
  notify: number;
}

/** The message a notice is about. */
export interface BounceMessage {
  queueName: string;
  queueId: string;
  encoding: string;
  smtputf8: number;
  sender: string;
  envid: string;
  ret: number;
}

/** What agents and qmgr need from the bounce daemon. */
export interface BounceService {
  /** Appends one recipient's status to a per-message log; false when the service failed. */
  append(log: BounceLog, queueId: string, rcpt: BounceRecipient, dsn: DsnStatus): Promise<boolean>;
  /** Sends a notice built from a log (flush or warn); false when it could not be sent. */
  notify(request: "flush" | "warn", log: BounceLog, msg: BounceMessage): Promise<boolean>;
}

/** The attribute list of one appended recipient. */
export function appendAttrs(
  log: BounceLog,
  queueId: string,
  rcpt: BounceRecipient,
  dsn: DsnStatus,
): Record<string, string | number> {
  return {
    request: "append",
    log,
    queue_id: queueId,
    orig_rcpt: rcpt.origRcpt,
    recipient: rcpt.address,
    offset: rcpt.offset,
    dsn_orig_rcpt: rcpt.dsnOrcpt,
    notify_flags: rcpt.notify,
    status: dsn.status,
    diag_type: dsn.diagType ?? "",
    diag_text: dsn.diagText ?? "",
    mta_type: dsn.mtaType ?? "",
    mta_name: dsn.mtaName ?? "",
    action: dsn.action,
    reason: dsn.reason,
  };
}

/** Sends one request list to `path` and returns the reply's status (-1 on any failure). */
export async function bounceRequest(
  path: string,
  attrs: Record<string, string | number>,
): Promise<number> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return -1;
  }
  try {
    const data = encodeAttrs(attrs);
    for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
    const reader = new AttrReader();
    const buf = new Uint8Array(1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return -1;
      const lists = reader.push(buf.subarray(0, n));
      if (lists.length) return Number(lists[0].get("status") ?? "-1");
    }
  } catch {
    return -1;
  } finally {
    conn.close();
  }
}

/** The bounce service over the sockets in `queueDirectory/private/`. */
export function bounceClient(
  queueDirectory: string,
  services: Record<BounceLog, string> = { bounce: "bounce", defer: "defer", trace: "trace" },
): BounceService {
  const path = (log: BounceLog) => `${queueDirectory}/private/${services[log]}`;
  return {
    async append(log, queueId, rcpt, dsn) {
      return await bounceRequest(path(log), appendAttrs(log, queueId, rcpt, dsn)) === 0;
    },
    async notify(request, log, msg) {
      const status = await bounceRequest(path(log), {
        request,
        log,
        queue_name: msg.queueName,
        queue_id: msg.queueId,
        encoding: msg.encoding,
        smtputf8: msg.smtputf8,
        sender: msg.sender,
        envid: msg.envid,
        ret: msg.ret,
      });
      return status === 0;
    },
  };
}
