// The smtp/lmtp client's side of the connection cache (scache(8)), as
// Postfix's smtp(8) uses it: a session that ended its mail transaction
// cleanly is handed to scache instead of being closed with QUIT, and a later
// delivery (in this process or another smtp process) takes it back before
// connecting, says RSET, and skips greeting and EHLO.
//
// When: sessions to destinations in smtp_connection_cache_destinations are
// always cached; otherwise, with smtp_connection_cache_on_demand, as qmgr
// asks in the request flags (CONN_LOAD: take a cached session; CONN_STORE:
// leave this one), which it sets while a destination has a backlog.
// A session is not stored again once it has been used
// smtp_connection_reuse_count_limit times (0: no limit) or is older than
// smtp_connection_reuse_time_limit; scache keeps it at most
// smtp_connection_cache_time_limit (capped by connection_cache_ttl_limit).
//
// Not cached here: TLS sessions (Postfix needs smtp_tls_connection_reuse and
// tlsproxy(8) for that), SASL-authenticated sessions, and unix-domain LMTP
// sessions: they are ended with QUIT as before.
//
// Labels: the destination label is `service:nexthop` (the master.cf service
// name, so that services with different -o settings never share sessions),
// the endpoint label `service:address:port`. The endpoint properties carry
// what reuse needs: the server's name, the EHLO features, how often the
// session was used and when it was opened.

import { closeFd } from "../../lib/ffi/libc.ts";
import type { ScacheClient } from "../../lib/scache_client.ts";
import { warn } from "../../lib/log.ts";
import type { Config } from "../../lib/config/mod.ts";
import type { ServerAddress } from "./nexthop.ts";
import { DeliverFlag } from "../../lib/deliver/request.ts";
import type { ServerFeatures } from "./session.ts";

/** DEL_REQ_FLAG_CONN_LOAD: qmgr lets the agent take a session from the cache. */
export const CONN_LOAD = DeliverFlag.CONN_LOAD;
/** DEL_REQ_FLAG_CONN_STORE: qmgr lets the agent leave its session in the cache. */
export const CONN_STORE = DeliverFlag.CONN_STORE;

/** The connection cache parameters (smtp_connection_* / lmtp_connection_*). */
export interface CacheSettings {
  onDemand: boolean;
  /** smtp_connection_cache_destinations, lower-cased. */
  destinations: string[];
  /** Seconds an idle session stays in scache. */
  timeLimit: number;
  /** Seconds after which a session is no longer stored (from its connect). */
  reuseTimeLimit: number;
  /** Uses after which a session is no longer stored (0: no limit). */
  reuseCountLimit: number;
}

/** Reads the cache parameters with prefix `p` (smtp or lmtp). */
export function cacheSettings(config: Config, p: string): CacheSettings {
  return {
    onDemand: config.bool(`${p}_connection_cache_on_demand`),
    destinations: config.list(`${p}_connection_cache_destinations`).map((d) => d.toLowerCase()),
    timeLimit: config.time(`${p}_connection_cache_time_limit`),
    reuseTimeLimit: config.time(`${p}_connection_reuse_time_limit`),
    reuseCountLimit: config.int(`${p}_connection_reuse_count_limit`),
  };
}

/** What a cached session's endpoint properties say. */
export interface SessionInfo {
  server: ServerAddress;
  features: ServerFeatures;
  /** Transactions already done on the session. */
  uses: number;
  /** When the connection was made (ms since the epoch). */
  opened: number;
}

/** A session taken from the cache: the descriptor is the caller's. */
export interface CachedSession extends SessionInfo {
  fd: number;
}

/** What the cache may do for one request. */
export interface CachePolicy {
  load: boolean;
  store: boolean;
}

/**
 * Whether a request may take and leave sessions: always for a destination
 * in smtp_connection_cache_destinations (by its name, or as written), else
 * as qmgr's flags say when on-demand caching is on.
 */
export function cachePolicy(
  s: CacheSettings,
  flags: number,
  dest: { text: string; name: string },
): CachePolicy {
  const text = dest.text.toLowerCase();
  const name = dest.name.toLowerCase();
  if (s.destinations.some((d) => d === text || d === name)) return { load: true, store: true };
  if (!s.onDemand) return { load: false, store: false };
  return { load: (flags & CONN_LOAD) !== 0, store: (flags & CONN_STORE) !== 0 };
}

function parseInfo(prop: string): SessionInfo | undefined {
  try {
    const v = JSON.parse(prop);
    if (typeof v?.server?.addr !== "string" || typeof v.uses !== "number") return undefined;
    return v as SessionInfo;
  } catch {
    return undefined;
  }
}

/** The connection cache of one smtp/lmtp service. */
export class ConnectionCache {
  constructor(
    readonly client: ScacheClient,
    readonly settings: CacheSettings,
    /** The master.cf service name, in every label. */
    readonly service: string,
  ) {}

  destLabel(nexthop: string): string {
    return `${this.service}:${nexthop.toLowerCase()}`;
  }

  endpLabel(server: ServerAddress): string {
    return `${this.service}:${server.addr}:${server.port}`;
  }

  /** A cached session for a next-hop destination, or undefined. */
  async findDest(nexthop: string): Promise<CachedSession | undefined> {
    return this.hit(await this.client.findDest(this.destLabel(nexthop)));
  }

  /** A cached session to a server address, or undefined. */
  async findEndp(server: ServerAddress): Promise<CachedSession | undefined> {
    return this.hit(await this.client.findEndp(this.endpLabel(server)));
  }

  private hit(
    h: { fd: number; endpProp: string } | null,
  ): CachedSession | undefined {
    if (!h) return undefined;
    const info = parseInfo(h.endpProp);
    if (!info) {
      warn(`connection cache: bad endpoint properties: ${h.endpProp.slice(0, 100)}`);
      closeFd(h.fd);
      return undefined;
    }
    return { ...info, fd: h.fd };
  }

  /** Whether a session used `uses` times (this one included), opened at `opened`, may be stored. */
  reusable(uses: number, opened: number, now = Date.now()): boolean {
    const s = this.settings;
    if (s.reuseCountLimit > 0 && uses >= s.reuseCountLimit) return false;
    return (now - opened) / 1000 < s.reuseTimeLimit;
  }

  /**
   * Hands descriptor `fd` to scache under the server's endpoint, with the
   * next hop bound to it; true when scache took it (the caller then closes
   * its own copy without QUIT).
   */
  save(nexthop: string, info: SessionInfo, fd: number): Promise<boolean> {
    return this.client.save(
      this.destLabel(nexthop),
      this.endpLabel(info.server),
      { dest: "", endp: JSON.stringify(info) },
      fd,
      Math.max(1, Math.round(this.settings.timeLimit)),
    );
  }
}
