// The client side of queue flushing, shared by postqueue and sendmail -q:
// triggers to qmgr (postqueue -f, sendmail -q) and requests to the flush
// service (postqueue -i / -s, sendmail -qI / -qR). Failures are fatal with
// sysexits EX_UNAVAILABLE, as Postfix's postqueue exits.

import type { Config } from "./config/mod.ts";
import { sendTrigger } from "./ipc/trigger.ts";
import { AttrReader, encodeAttrs } from "./ipc/attr.ts";
import { fatal, FatalError, warn } from "./log.ts";
import { describe } from "./queue/file.ts";

/** sysexits EX_UNAVAILABLE. */
const exUnavailable = 69;

function die(text: string): never {
  dieWith(exUnavailable, text);
}

/** -i: asks the flush service to deliver one queued message now. */
export function flushQueueFile(config: Config, queueId: string): Promise<number> {
  return askFlush(config, { request: "send_file", queue_id: queueId }, queueId);
}

/** -s: asks the flush service to deliver the mail for one site now. */
export function flushSite(config: Config, site: string): Promise<number> {
  return askFlush(config, { request: "send_site", site }, site);
}

/**
 * -f: Postfix's mail_flush_deferred: tell qmgr to forget dead destinations
 * (F) and scan every queue ignoring retry times (A), then scan the deferred
 * (D) and incoming (I) queues now.
 */
export async function flushQueue(config: Config): Promise<number> {
  const service = config.get("qmgr_service_name") || "qmgr";
  const path = `${config.get("queue_directory")}/public/${service}`;
  try {
    Deno.statSync(path);
  } catch (err) {
    warn(`unable to look up public/${service}: ${describe(err)}`);
    die("Cannot flush mail queue - mail system is down");
  }
  try {
    await sendTrigger(path, "FADI", 1000 * config.time("trigger_timeout"));
  } catch {
    die("Cannot flush mail queue - mail system is down");
  }
  return 0;
}

/** The flush service's protocol name, announced when a client connects. */
export const FLUSH_PROTOCOL = "queue_flush_protocol";

/** The flush service's status codes (Postfix's FLUSH_STAT_*). */
export const FlushStatus = {
  /** The request could not be completed (the service or a table failed). */
  fail: -1,
  ok: 0,
  unknown: 2,
  /** A malformed request (bad site or queue id syntax). */
  bad: 3,
  /** The site is not listed in fast_flush_domains. */
  deny: 4,
} as const;

/** sysexits EX_USAGE and EX_SOFTWARE. */
const exUsage = 64;
const exSoftware = 70;

/**
 * One request to the flush service: connects to public/flush, skips the
 * protocol announcement, sends the request and returns the status (FAIL
 * when the service cannot be reached or does not answer).
 */
export async function flushRequest(
  config: Config,
  request: Record<string, string>,
  onConnectError?: (err: unknown, service: string) => void,
): Promise<number> {
  // Postfix's client matches fast_flush_domains before it connects; the
  // server matches again. An empty list makes no site eligible.
  if (
    (request.request === "send_site" || request.request === "add") &&
    config.list("fast_flush_domains").length === 0
  ) {
    return FlushStatus.deny;
  }
  const service = config.get("flush_service_name") || "flush";
  const path = `${config.get("queue_directory")}/public/${service}`;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    onConnectError?.(err, service);
    return FlushStatus.fail;
  }
  const timeoutMs = 1000 * (config.time("ipc_timeout") || 3600);
  const timer = setTimeout(() => conn.close(), timeoutMs);
  let status: number = FlushStatus.fail;
  try {
    await conn.write(encodeAttrs(request));
    const reader = new AttrReader();
    const buf = new Uint8Array(4096);
    let answered = false;
    while (!answered) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (const reply of reader.push(buf.slice(0, n))) {
        const value = reply.get("status");
        if (value === undefined) continue; // the protocol announcement
        // Postfix prints the status unsigned: 4294967295 is -1 (FAIL).
        const code = Number(value);
        status = code === 4294967295 ? FlushStatus.fail : Number.isInteger(code) ? code : -1;
        answered = true;
      }
    }
  } catch {
    status = FlushStatus.fail;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
  return status;
}

/** -i and -s: one request, the answer turned into postqueue's exit or diagnostic. */
async function askFlush(
  config: Config,
  request: Record<string, string>,
  what: string,
): Promise<number> {
  const status = await flushRequest(config, request, (err, service) => {
    warn(`connect to public/${service}: ${describe(err)}`);
  });
  const site = request.request === "send_site";
  switch (status) {
    case FlushStatus.ok:
      return 0;
    case FlushStatus.bad:
      dieWith(exUsage, `Invalid request: "${what}"`);
      break;
    case FlushStatus.fail:
      die("Cannot flush mail queue - mail system is down");
      break;
    case FlushStatus.deny:
      if (site) die(`Flush service is not configured for destination "${what}"`);
  }
  // postqueue's words: "Unknown" after -s, "Unexpected" after -i.
  dieWith(exSoftware, `${site ? "Unknown" : "Unexpected"} flush server reply status ${status}`);
}

function dieWith(code: number, text: string): never {
  try {
    fatal(text);
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, code);
    throw err;
  }
}

/**
 * Tells the flush service that message `queueId` has mail deferred to
 * `site` (Postfix's flush_add). Never fatal: the caller goes on whatever
 * the answer; a failure other than "not eligible" is logged as Postfix logs
 * it. With fast_flush_domains empty nothing is sent.
 */
export async function flushAdd(config: Config, site: string, queueId: string): Promise<number> {
  const status = await flushRequest(config, { request: "add", site, queue_id: queueId });
  if (status !== FlushStatus.ok && status !== FlushStatus.deny) {
    warn(`${queueId}: ${config.get("flush_service_name") || "flush"} service failure`);
  }
  return status;
}

/**
 * What Postfix's defer logging does for every deferred recipient: tells the
 * flush service about the recipient's domain (the text after the last "@";
 * nothing for an address without one).
 */
export function flushAddRecipient(
  config: Config,
  address: string,
  queueId: string,
): Promise<number> {
  const at = address.lastIndexOf("@");
  const site = at < 0 ? "" : address.slice(at + 1);
  if (!site) return Promise.resolve(FlushStatus.deny);
  return flushAdd(config, site, queueId);
}

/** Asks the flush service to refresh its logfiles (Postfix's flush_refresh). */
export function flushRefresh(config: Config): Promise<number> {
  return flushRequest(config, { request: "rfrsh" });
}

/** Asks the flush service to send every logfile (Postfix's flush_purge). */
export function flushPurge(config: Config): Promise<number> {
  return flushRequest(config, { request: "purge" });
}
