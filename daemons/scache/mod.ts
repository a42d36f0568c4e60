// scache: the shared connection cache, as Postfix's scache(8).
//
// Delivery agents hand it open connections (descriptors passed over the
// unix socket) under a physical endpoint label, and bind logical
// destination labels to endpoints; a later request by destination or
// endpoint takes a cached connection out again. Everything lives at most
// connection_cache_ttl_limit seconds; an expired connection is closed.
// Hit and miss counts and the peak cache size are logged every
// connection_cache_status_update_time and when the process exits. The
// protocol (Postfix's requests, lock-step descriptor passing) is described
// in lib/scache_client.ts, which is also the client.

import type * as net from "node:net";
import { type DaemonContext, eventServer } from "../../lib/daemon/server.ts";
import { closeFd, sendFd } from "../../lib/ffi/libc.ts";
import { debug, info, warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import {
  type AttrPairs,
  ScacheChannel,
  ScacheProtocolError,
  ScacheRequest,
  ScacheStatus,
  values,
} from "../../lib/scache_client.ts";

/** A cached connection. */
interface Session {
  fd: number;
  prop: string;
  timer: number;
}

/** A destination's binding to an endpoint. */
interface Binding {
  endpLabel: string;
  prop: string;
  timer: number;
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** ctime(3)'s `Mmm dd hh:mm:ss` (day space-padded), in local time. */
function ctimeStamp(when: Date): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${months[when.getMonth()]} ${String(when.getDate()).padStart(2, " ")} ` +
    `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())}`;
}

/** A timer that does not keep the process alive. */
function later(ms: number, fn: () => void): number {
  const id = setTimeout(fn, ms) as unknown as number;
  Deno.unrefTimer(id);
  return id;
}

/** The cache: endpoints with their connections, destinations with their endpoints, counters. */
export class ScacheState {
  private endpoints = new Map<string, Session[]>();
  private dests = new Map<string, Binding[]>();
  private destHits = 0;
  private destMiss = 0;
  private endpHits = 0;
  private endpMiss = 0;
  private maxDest = 0;
  private maxEndp = 0;
  private maxSess = 0;
  private start = new Date();

  /** `ttlLimit`: connection_cache_ttl_limit in seconds. */
  constructor(readonly ttlLimit: number) {}

  private ttlMs(ttl: number): number {
    return Math.min(ttl, this.ttlLimit) * 1000;
  }

  /** Caches `fd` (now the cache's) under `label`. */
  saveEndp(ttl: number, label: string, prop: string, fd: number): void {
    const list = this.endpoints.get(label) ?? [];
    const session: Session = { fd, prop, timer: 0 };
    session.timer = later(this.ttlMs(ttl), () => {
      debug(`scache: ${label}: connection expired`);
      this.dropSession(label, session, true);
    });
    // The newest connection is handed out first.
    list.unshift(session);
    this.endpoints.set(label, list);
    this.updateSize();
  }

  private dropSession(label: string, session: Session, close: boolean): void {
    clearTimeout(session.timer);
    const list = this.endpoints.get(label);
    if (!list) return;
    const at = list.indexOf(session);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.endpoints.delete(label);
    if (close) closeFd(session.fd);
  }

  /** Binds destination `label` to endpoint `endpLabel` (replacing an older binding to it). */
  saveDest(ttl: number, label: string, prop: string, endpLabel: string): void {
    const list = (this.dests.get(label) ?? []).filter((b) => {
      if (b.endpLabel !== endpLabel) return true;
      clearTimeout(b.timer);
      return false;
    });
    const binding: Binding = {
      endpLabel,
      prop,
      timer: 0,
    };
    binding.timer = later(this.ttlMs(ttl), () => {
      const now = this.dests.get(label);
      if (!now) return;
      const rest = now.filter((b) => b !== binding);
      if (rest.length) this.dests.set(label, rest);
      else this.dests.delete(label);
    });
    list.unshift(binding);
    this.dests.set(label, list);
    this.updateSize();
  }

  private take(label: string): Session | undefined {
    const session = this.endpoints.get(label)?.[0];
    if (session) this.dropSession(label, session, false);
    return session;
  }

  /** Takes a connection for endpoint `label` out of the cache (the caller owns the descriptor). */
  findEndp(label: string): { fd: number; prop: string } | undefined {
    const session = this.take(label);
    if (session) this.endpHits++;
    else this.endpMiss++;
    return session && { fd: session.fd, prop: session.prop };
  }

  /** Takes a connection for destination `label` through its endpoints, newest binding first. */
  findDest(label: string): { fd: number; destProp: string; endpProp: string } | undefined {
    for (const binding of this.dests.get(label) ?? []) {
      const session = this.take(binding.endpLabel);
      if (session) {
        this.destHits++;
        return { fd: session.fd, destProp: binding.prop, endpProp: session.prop };
      }
    }
    this.destMiss++;
    return undefined;
  }

  /** Destinations, endpoints and connections cached now. */
  size(): { dest: number; endp: number; sess: number } {
    let sess = 0;
    for (const list of this.endpoints.values()) sess += list.length;
    return { dest: this.dests.size, endp: this.endpoints.size, sess };
  }

  private updateSize(): void {
    const s = this.size();
    this.maxDest = Math.max(this.maxDest, s.dest);
    this.maxEndp = Math.max(this.maxEndp, s.endp);
    this.maxSess = Math.max(this.maxSess, s.sess);
  }

  /** The statistics lines for the interval so far (none when nothing happened); starts a new one. */
  statistics(now = new Date()): string[] {
    const lines: string[] = [];
    const any = this.destHits || this.destMiss || this.endpHits || this.endpMiss ||
      this.maxDest || this.maxEndp || this.maxSess;
    if (any) lines.push(`statistics: start interval ${ctimeStamp(this.start)}`);
    if (this.destHits || this.destMiss) {
      const pct = Math.floor(this.destHits * 100 / (this.destHits + this.destMiss));
      lines.push(
        `statistics: domain lookup hits=${this.destHits} miss=${this.destMiss} success=${pct}%`,
      );
      this.destHits = this.destMiss = 0;
    }
    if (this.endpHits || this.endpMiss) {
      const pct = Math.floor(this.endpHits * 100 / (this.endpHits + this.endpMiss));
      lines.push(
        `statistics: address lookup hits=${this.endpHits} miss=${this.endpMiss} success=${pct}%`,
      );
      this.endpHits = this.endpMiss = 0;
    }
    if (this.maxDest || this.maxEndp || this.maxSess) {
      lines.push(
        `statistics: max simultaneous domains=${this.maxDest} addresses=${this.maxEndp} ` +
          `connection=${this.maxSess}`,
      );
      this.maxDest = this.maxEndp = this.maxSess = 0;
    }
    this.start = now;
    return lines;
  }

  /** Closes every cached connection. */
  clear(): void {
    for (const [label, list] of [...this.endpoints]) {
      for (const s of [...list]) this.dropSession(label, s, true);
    }
    for (const list of this.dests.values()) for (const b of list) clearTimeout(b.timer);
    this.dests.clear();
  }
}

/** A positive ttl, or undefined. */
function ttlOf(pairs: AttrPairs): number | undefined {
  const text = values(pairs, "ttl")[0];
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  const ttl = parseInt(text, 10);
  return ttl > 0 ? ttl : undefined;
}

/** Hands a cached descriptor to the client once it says it is ready, then closes ours. */
async function handOver(ch: ScacheChannel, fd: number): Promise<void> {
  try {
    const ready = await ch.read();
    if (!ready) throw new ScacheProtocolError("lost connection");
    sendFd(ch.fd, fd);
  } finally {
    closeFd(fd);
  }
}

/** Serves one request. */
async function serveRequest(ch: ScacheChannel, req: AttrPairs, state: ScacheState): Promise<void> {
  const request = values(req, "request")[0] ?? "";
  const labels = values(req, "label");
  const props = values(req, "property");
  const bad = async (where: string, extra: AttrPairs = []) => {
    warn(`scache_${where}_service: bad or missing request parameter`);
    await ch.write([["status", String(ScacheStatus.BAD)], ...extra]);
  };
  switch (request) {
    case ScacheRequest.SAVE_ENDP: {
      const ttl = ttlOf(req);
      if (ttl === undefined || labels.length < 1 || props.length < 1) return bad("save_endp");
      await ch.write([["dummy", ""]]);
      let fd: number;
      try {
        fd = await ch.receiveFd();
      } catch (err) {
        warn(
          `scache_save_endp_service: unable to receive file descriptor: ${(err as Error).message}`,
        );
        await ch.write([["status", String(ScacheStatus.FAIL)]]);
        return;
      }
      state.saveEndp(ttl, labels[0], props[0], fd);
      await ch.write([["status", String(ScacheStatus.OK)]]);
      return;
    }
    case ScacheRequest.FIND_ENDP: {
      if (labels.length < 1) return bad("find_endp", [["property", ""]]);
      const hit = state.findEndp(labels[0]);
      if (!hit) return ch.write([["status", String(ScacheStatus.FAIL)], ["property", ""]]);
      await ch.write([["status", String(ScacheStatus.OK)], ["property", hit.prop]]);
      return handOver(ch, hit.fd);
    }
    case ScacheRequest.SAVE_DEST: {
      const ttl = ttlOf(req);
      if (ttl === undefined || labels.length < 2 || props.length < 1) return bad("save_dest");
      state.saveDest(ttl, labels[0], props[0], labels[1]);
      return ch.write([["status", String(ScacheStatus.OK)]]);
    }
    case ScacheRequest.FIND_DEST: {
      if (labels.length < 1) return bad("find_dest", [["property", ""], ["property", ""]]);
      const hit = state.findDest(labels[0]);
      if (!hit) {
        return ch.write([["status", String(ScacheStatus.FAIL)], ["property", ""], [
          "property",
          "",
        ]]);
      }
      await ch.write([
        ["status", String(ScacheStatus.OK)],
        ["property", hit.destProp],
        ["property", hit.endpProp],
      ]);
      return handOver(ch, hit.fd);
    }
  }
  warn(`unrecognized request: "${request}", ignored`);
  await ch.write([["status", String(ScacheStatus.BAD)]]);
}

/**
 * Serves one client connection, request after request. The connection is
 * read raw (not through node:net) so that no passed descriptor is ever
 * swallowed as stream data.
 */
export async function serveScache(
  conn: net.Socket,
  state: ScacheState,
  timeoutMs: number,
): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const handle = (conn as any)._handle;
  const fd = handle?.fd;
  if (typeof fd !== "number" || fd < 0) {
    warn("scache: client connection without a descriptor");
    conn.destroy();
    return;
  }
  // From now on only this function reads the socket.
  handle.readStop?.();
  const ch = new ScacheChannel(fd, timeoutMs);
  try {
    for (;;) {
      const req = await ch.read();
      if (!req) break;
      await serveRequest(ch, req, state);
    }
  } catch (err) {
    if (!(err instanceof ScacheProtocolError)) throw err;
    debug(`scache: client: ${err.message}`);
  } finally {
    conn.destroy();
  }
}

/** Runs scache under the daemon runtime (one process, every client at once). */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  let state: ScacheState | undefined;
  let timeoutMs = 3600_000;
  const dump = () => state?.statistics().forEach((l) => info(l));
  const code = await eventServer(args, ctx, (conn) => serveScache(conn, state!, timeoutMs), {
    // A client (smtp) keeps its connection between deliveries.
    requestTimeout: 20 * 86400,
    ignoreMaxUse: true,
    init(d: DaemonContext) {
      state = new ScacheState(d.config.time("connection_cache_ttl_limit"));
      timeoutMs = Math.min(d.config.time("ipc_timeout"), 20 * 86400) * 1000;
      const every = d.config.time("connection_cache_status_update_time") * 1000;
      const timer = setInterval(dump, every);
      Deno.unrefTimer(timer);
    },
  });
  // Postfix's scache logs the last interval on its way out.
  dump();
  state?.clear();
  return code;
}
