// flush: the fast flush server, as Postfix's flush(8).
//
// Keeps, per destination listed in fast_flush_domains, a logfile of the
// queue ids with mail deferred to it (delivery agents send "add"), and on
// "send_site" (smtpd ETRN, postqueue -s, sendmail -qR) moves that mail from
// deferred to incoming and wakes qmgr; "send_file" (postqueue -i) does the
// same for one message; "rfrsh" and "purge" (and the master's wakeup timer)
// keep the logfiles sane. One request per connection, answered with
// Postfix's flush status codes.

import type * as net from "node:net";
import { type DaemonContext, singleServer } from "../../lib/daemon/server.ts";
import { type AttrList, AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import { FLUSH_PROTOCOL, FlushStatus } from "../../lib/flush_client.ts";
import {
  addService,
  type FlushEnv,
  flushEnvFromConfig,
  refreshService,
  sendFileService,
  sendSiteService,
} from "./service.ts";

/** The master's wakeup trigger (master.cf wakeup time): a lone "W", then end of input. */
const WAKEUP = "wakeup";

/**
 * Reads one request; WAKEUP when the master's timer sent its trigger byte;
 * undefined when the client goes away or is too slow.
 */
function readRequest(
  conn: net.Socket,
  timeoutMs: number,
): Promise<AttrList | typeof WAKEUP | undefined> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    let head = "";
    const done = (result: AttrList | typeof WAKEUP | undefined) => {
      clearTimeout(timer);
      conn.off("data", onData);
      resolve(result);
    };
    const timer = setTimeout(() => {
      warn("timeout while waiting for data from unknown_stream");
      done(undefined);
    }, timeoutMs);
    const onData = (chunk: Uint8Array) => {
      if (head.length < 2) head += new TextDecoder().decode(chunk.subarray(0, 2));
      const [list] = reader.push(chunk);
      if (list) done(list);
    };
    conn.on("data", onData);
    conn.once("end", () => done(head === "W" ? WAKEUP : undefined));
    conn.once("error", () => done(undefined));
  });
}

function reply(conn: net.Socket, status: number): Promise<void> {
  return new Promise((resolve) => {
    if (conn.destroyed) return resolve();
    conn.write(encodeAttrs({ status }), () => resolve());
  });
}

/** An attribute the request must carry; a warning when it is missing. */
function required(request: AttrList, name: string): string | undefined {
  const value = request.get(name);
  if (value === undefined) warn(`missing attribute ${name} in input from unknown_stream`);
  return value;
}

/** Serves one client: the protocol announcement, one request, one reply. */
export async function serveFlush(conn: net.Socket, env: FlushEnv, timeoutMs: number) {
  conn.write(encodeAttrs({ protocol: FLUSH_PROTOCOL }));
  const request = await readRequest(conn, timeoutMs);
  if (!request) return;
  // The periodic wakeup keeps the logfiles sane, as a refresh request does.
  if (request === WAKEUP) return void await refreshService(env, false);
  const what = request.get("request") ?? "";
  let status: number;
  switch (what) {
    case "add": {
      const site = required(request, "site");
      const queueId = site === undefined ? undefined : required(request, "queue_id");
      status = site === undefined || queueId === undefined
        ? FlushStatus.bad
        : await addService(env, site, queueId);
      break;
    }
    case "send_site": {
      const site = required(request, "site");
      status = site === undefined ? FlushStatus.bad : await sendSiteService(env, site);
      break;
    }
    case "send_file": {
      const queueId = required(request, "queue_id");
      status = queueId === undefined ? FlushStatus.bad : await sendFileService(env, queueId);
      break;
    }
    case "rfrsh":
    case "purge":
      // These complete in the background: the client has its answer first.
      await reply(conn, FlushStatus.ok);
      conn.end();
      await refreshService(env, what === "purge");
      return;
    default:
      warn(`unrecognized request: "${what}", ignored`);
      return;
  }
  await reply(conn, status);
}

/** Runs flush under the daemon runtime (one client at a time, as Postfix's single server). */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: FlushEnv | undefined;
  let timeoutMs = 0;
  return singleServer(args, ctx, (conn) => serveFlush(conn, env!, timeoutMs), {
    init(d: DaemonContext) {
      env = flushEnvFromConfig(d.config, layoutFromConfig(d.config));
      timeoutMs = 1000 * d.config.time("ipc_timeout");
    },
  });
}
