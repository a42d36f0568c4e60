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
  try {
    fatal(text);
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, exUnavailable);
    throw err;
  }
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

/** The flush service's replies (Postfix's flush_clnt status codes). */
const flushStatus = { ok: "0", fail: "1", bad: "3", deny: "4" };

/** -i and -s: one request to the flush service (Postfix's attribute protocol). */
async function askFlush(
  config: Config,
  request: Record<string, string>,
  what: string,
): Promise<number> {
  const service = config.get("flush_service_name") || "flush";
  const path = `${config.get("queue_directory")}/public/${service}`;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    warn(`connect to public/${service}: ${describe(err)}`);
    die("Cannot flush mail queue - mail system is down");
  }
  let status: string | undefined;
  try {
    await conn.write(encodeAttrs(request));
    const reader = new AttrReader();
    const buf = new Uint8Array(4096);
    while (status === undefined) {
      const n = await conn.read(buf);
      if (n === null) break;
      const [reply] = reader.push(buf.slice(0, n));
      if (reply) status = reply.get("status") ?? "";
    }
  } catch {
    status = undefined;
  } finally {
    conn.close();
  }
  if (status === flushStatus.ok) return 0;
  if (status === flushStatus.deny) {
    die(
      request.request === "send_site"
        ? `Flush service is not configured for destination "${what}"`
        : `Cannot flush queue ID - no such message: "${what}"`,
    );
  }
  if (status === flushStatus.bad) die(`Invalid request: "${what}"`);
  die("Cannot flush mail queue - mail system is down");
}
