// verify: the address verification server, as Postfix's verify(8).
//
// Keeps what is known about recipient (and sender) addresses: deliverable,
// undeliverable, or being probed. A query for an address nobody knows
// about, or whose result is due for refresh, sends a probe message through
// the cleanup service (trace flag DEL_REQ_FLAG_MTA_VRFY: the queue routes
// it like any mail, and the delivery agents report what they would do with
// an update request instead of delivering). Results live in
// address_verify_map (default btree:$data_directory/verify_cache), expired
// entries are dropped every address_verify_cache_cleanup_interval. The
// request protocol is in lib/verify_client.ts; cache rules in cache.ts.

import type * as net from "node:net";
import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, eventServer } from "../../lib/daemon/server.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { fatal, info, warn } from "../../lib/log.ts";
import { DictError } from "../../maps/mod.ts";
import type { Config } from "../../lib/config/mod.ts";
import { VERIFY_PROTOCOL, VerifyStat } from "../../lib/verify_client.ts";
import { type CacheSettings, type CacheStore, memoryStore, VerifyCache } from "./cache.ts";
import { postProbe, probeSender } from "./probe.ts";
import { tableStore } from "./store.ts";

/** The cache settings from the configuration. */
export function cacheSettings(config: Config): CacheSettings {
  return {
    positiveExpire: config.time("address_verify_positive_expire_time"),
    positiveRefresh: config.time("address_verify_positive_refresh_time"),
    negativeCache: config.bool("address_verify_negative_cache"),
    negativeExpire: config.time("address_verify_negative_expire_time"),
    negativeRefresh: config.time("address_verify_negative_refresh_time"),
  };
}

/** What serving needs: the cache, and how to send a probe. */
export interface VerifyService {
  cache: VerifyCache;
  probe(address: string): Promise<unknown>;
}

/** Answers one request list; the reply list. */
export async function handleVerifyRequest(
  svc: VerifyService,
  req: Map<string, string>,
): Promise<Record<string, string | number>> {
  const request = req.get("request") ?? "";
  const address = req.get("address");
  if (address === undefined) {
    warn(`bad ${request || "verify"} request: no address`);
    return { status: VerifyStat.BAD >>> 0 };
  }
  if (request === "query") {
    const answer = await svc.cache.query(address);
    if (answer.probe) {
      // The answer does not wait for the probe to be queued.
      svc.probe(address).catch((err) => warn(`probe for ${address}: ${(err as Error).message}`));
    }
    return { status: VerifyStat.OK, recipient_status: answer.status, reason: answer.why };
  }
  if (request === "update") {
    const status = Number(req.get("recipient_status") ?? "");
    const stat = await svc.cache.update(address, status, req.get("reason") ?? "");
    if (stat === VerifyStat.BAD) {
      warn(`bad recipient status ${req.get("recipient_status") ?? ""} for recipient ${address}`);
    }
    return { status: stat >>> 0 };
  }
  warn(`unrecognized request: "${request}", ignored`);
  // Numbers go out unsigned, as Postfix prints them (-2 is 4294967294).
  return { status: VerifyStat.BAD >>> 0 };
}

/** Serves one client: requests in turn until it hangs up. */
function serveClient(conn: net.Socket, svc: VerifyService): Promise<void> {
  conn.write(encodeAttrs({ protocol: VERIFY_PROTOCOL }));
  return new Promise((resolve) => {
    const reader = new AttrReader();
    let chain = Promise.resolve();
    conn.on("data", (chunk: Uint8Array) => {
      let lists: Map<string, string>[];
      try {
        lists = reader.push(chunk);
      } catch (err) {
        warn(`bad request: ${(err as Error).message}`);
        conn.destroy();
        return;
      }
      for (const list of lists) {
        chain = chain.then(async () => {
          const reply = await handleVerifyRequest(svc, list).catch((err) => {
            warn(`${(err as Error).message}`);
            return { status: VerifyStat.FAIL >>> 0 };
          });
          if (!conn.destroyed) conn.write(encodeAttrs(reply));
        });
      }
    });
    const done = () => chain.then(() => resolve());
    conn.on("close", done);
    conn.on("error", done);
  });
}

/** The store address_verify_map names, or memory when it is empty. */
export function openStore(config: Config): { store: CacheStore; name: string } {
  const spec = config.get("address_verify_map").trim();
  if (!spec) return { store: memoryStore(), name: "" };
  return { store: tableStore(spec, config), name: spec };
}

/** Drops expired entries at start and every address_verify_cache_cleanup_interval (0: never), as the reference. */
function scheduleCleanup(config: Config, cache: VerifyCache, name: string): void {
  const interval = config.time("address_verify_cache_cleanup_interval");
  if (!name || interval <= 0) return;
  const run = async () => {
    try {
      const { retained, dropped } = await cache.cleanup();
      info(`cache ${name} full cleanup: retained=${retained} dropped=${dropped} entries`);
    } catch (err) {
      warn(`cache ${name} cleanup: ${(err as Error).message}`);
    }
  };
  run();
  const timer = setInterval(run, interval * 1000);
  Deno.unrefTimer(timer);
}

/** The service from a daemon's configuration. */
export function verifyService(d: DaemonContext): VerifyService {
  const config = d.config;
  let opened: { store: CacheStore; name: string };
  try {
    opened = openStore(config);
  } catch (err) {
    if (err instanceof DictError) fatal(err.message);
    throw err;
  }
  const { store, name } = opened;
  const cache = new VerifyCache(store, cacheSettings(config), undefined, warn);
  scheduleCleanup(config, cache, name);
  const queue = config.get("queue_directory");
  const cleanup = `${queue}/public/${config.get("cleanup_service_name") || "cleanup"}`;
  return {
    cache,
    probe: (address) =>
      postProbe(cleanup, probeSender(config), address, {
        myhostname: config.get("myhostname"),
        mailName: config.get("mail_name") || "Postfix",
      }),
  };
}

/** Runs the verify service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let svc: VerifyService;
  return eventServer(args, ctx, (conn) => serveClient(conn, svc), {
    init(d) {
      svc = verifyService(d);
    },
  });
}
