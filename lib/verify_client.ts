// The client side of the address verification service, verify(8): one
// attribute list per request over private/verify (address_verify_service_name),
// as Postfix's verify_clnt_query() and verify_clnt_update():
//
//   server: protocol=address_verification_prrotocol (sic, as Postfix spells it)
//   request=query  address=ADDR          → status recipient_status reason
//   request=update address=ADDR recipient_status=N reason=TEXT → status
//
// `status` is the request's status (VRFY_STAT_*), `recipient_status` the
// address's (DEL_RCPT_STAT_*). smtpd's reject_unverified_sender and
// reject_unverified_recipient call verifyQuery(), which polls while a probe
// is in progress (address_verify_poll_count, address_verify_poll_delay);
// delivery agents answering a probe call verifyUpdate().

import { AttrReader, encodeAttrs } from "./ipc/attr.ts";

/** What is known of an address (DEL_RCPT_STAT_*). */
export const AddrStatus = {
  /** Deliverable. */
  OK: 0,
  /** Undeliverable for now. */
  DEFER: 1,
  /** Undeliverable. */
  BOUNCE: 2,
  /** Unknown: a probe is on its way. */
  TODO: 3,
} as const;

/** A request's status (VRFY_STAT_*). */
export const VerifyStat = { OK: 0, FAIL: -1, BAD: -2 } as const;

/** The server's greeting value (Postfix's spelling, typo included). */
export const VERIFY_PROTOCOL = "address_verification_prrotocol";

/** The request names. */
export const VerifyRequest = { QUERY: "query", UPDATE: "update" } as const;

/** What verifyQuery() learned; status is an AddrStatus, or VerifyStat.FAIL when the service failed. */
export interface VerifyResult {
  status: number;
  why: string;
}

/** The configuration verifyQuery() and verifyUpdate() read. */
export interface VerifyClientConfig {
  get(name: string): string;
  time(name: string): number;
}

/** private/verify under queue_directory (the name from address_verify_service_name). */
export function verifyServicePath(config: VerifyClientConfig): string {
  const service = config.get("address_verify_service_name") || "verify";
  return `${config.get("queue_directory")}/private/${service}`;
}

/** Sends one request list; the reply list, or null when the service could not be reached or answered nothing. */
export async function verifyRequest(
  path: string,
  attrs: Record<string, string | number>,
  timeoutMs = 30_000,
): Promise<Map<string, string> | null> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return null;
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const data = encodeAttrs(attrs);
    for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
    const reader = new AttrReader();
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return null;
      // The server's greeting comes first; the reply is the next list.
      for (const list of reader.push(buf.subarray(0, n))) {
        if (!list.has("protocol")) return list;
      }
    }
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/** One query, as verify_clnt_query(): the request status, the address status and its text. */
export async function verifyQueryOnce(
  path: string,
  address: string,
): Promise<{ stat: number; status: number; why: string }> {
  const reply = await verifyRequest(path, { request: VerifyRequest.QUERY, address });
  // Postfix prints numbers unsigned: -2 arrives as 4294967294.
  const stat = Number(reply?.get("status") ?? VerifyStat.FAIL) | 0;
  if (!reply || stat !== VerifyStat.OK) return { stat: VerifyStat.FAIL, status: -1, why: "" };
  const status = Number(reply.get("recipient_status") ?? "");
  if (!(status in statusNames)) return { stat: VerifyStat.BAD, status: -1, why: "" };
  return { stat, status, why: reply.get("reason") ?? "" };
}

const statusNames: Record<number, string> = {
  0: "deliverable",
  1: "undeliverable",
  2: "undeliverable",
  3: "in progress",
};

/**
 * The status of an address, as smtpd asks it: a query, repeated while a
 * probe is in progress, up to address_verify_poll_count times with
 * address_verify_poll_delay between (the TODO status is what remains when
 * the probe has not answered by then). VerifyStat.FAIL when the service
 * failed.
 */
export async function verifyQuery(
  config: VerifyClientConfig,
  address: string,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<VerifyResult> {
  const path = verifyServicePath(config);
  const count = Math.max(1, parseInt(config.get("address_verify_poll_count"), 10) || 1);
  const delay = config.time("address_verify_poll_delay");
  for (let i = 0;; i++) {
    const r = await verifyQueryOnce(path, address);
    if (r.stat !== VerifyStat.OK) return { status: VerifyStat.FAIL, why: "" };
    if (r.status !== AddrStatus.TODO || i + 1 >= count) return { status: r.status, why: r.why };
    await sleep(delay * 1000);
  }
}

/** Records an address's status (verify_clnt_update()); returns the request status. */
export async function verifyUpdateAt(
  path: string,
  address: string,
  status: number,
  why: string,
): Promise<number> {
  const reply = await verifyRequest(path, {
    request: VerifyRequest.UPDATE,
    address,
    recipient_status: status,
    reason: why,
  });
  return Number(reply?.get("status") ?? VerifyStat.FAIL) | 0;
}

/** Records an address's status through the service the configuration names. */
export function verifyUpdate(
  config: VerifyClientConfig,
  address: string,
  status: number,
  why: string,
): Promise<number> {
  return verifyUpdateAt(verifyServicePath(config), address, status, why);
}
