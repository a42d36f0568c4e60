// tlsmgr: the TLS session cache and PRNG manager, as Postfix's tlsmgr(8).
//
// Keeps an in-memory PRNG pool, seeded at start from tls_random_source
// (dev:DEVICE, egd:SOCKET or a regular file) and from the exchange file
// tls_random_exchange_name, reseeded at random intervals up to
// tls_random_reseed_period, mixed with the time of day on every request,
// and saved to the exchange file every tls_random_prng_update_period and at
// exit. Serves the session caches of smtpd, smtp and lmtp
// (*_tls_session_cache_database btree tables through maps/, emptied at
// start, entries older than *_tls_session_cache_timeout dropped on lookup
// and by a periodic cleanup) and the session ticket key smtpd processes
// share. The protocol is described in lib/tlsmgr_client.ts.

import type * as net from "node:net";
import { createHash, randomBytes } from "node:crypto";
import * as nodeNet from "node:net";
import type { Config } from "../../lib/config/mod.ts";
import { type DaemonContext, eventServer } from "../../lib/daemon/server.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { debug, fatal, info, warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import {
  fromBase64,
  MAX_SEED,
  TICKET_KEY_NAME_LENGTH,
  TICKET_KEYS_LENGTH,
  TlsCacheType,
  type TlsCacheTypeName,
  TlsmgrRequest,
  TlsmgrStatus,
  toBase64,
} from "../../lib/tlsmgr_client.ts";
import { type Dict, openMap } from "../../maps/mod.ts";

/** Size of the PRNG exchange file, as Postfix writes it. */
export const EXCHANGE_SIZE = 1024;

/** The in-memory pool: a SHA-256 state every input is hashed into. */
export class PrngPool {
  private state = new Uint8Array(32);
  private counter = 0;

  /** Mixes `data` into the pool. */
  mix(data: Uint8Array): void {
    this.state = new Uint8Array(createHash("sha256").update(this.state).update(data).digest());
  }

  /** Mixes in the time of day (every request does, as in Postfix). */
  mixTime(): void {
    const t = new Float64Array([Date.now(), performance.now()]);
    this.mix(new Uint8Array(t.buffer));
  }

  /** `n` output bytes: the pool in counter mode, with the system generator mixed in. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const fresh = randomBytes(32);
    for (let at = 0; at < n; at += 32) {
      const block = createHash("sha256").update(this.state).update(fresh)
        .update(String(this.counter++)).digest();
      out.set(block.subarray(0, Math.min(32, n - at)), at);
    }
    // Output never reveals the state that produced it.
    this.mix(out);
    return out;
  }
}

/** An external entropy source: `dev:DEVICE`, `egd:SOCKET` or a regular file. */
export interface EntropySource {
  readonly spec: string;
  read(n: number): Promise<Uint8Array>;
}

/** Opens tls_random_source with Postfix's fatal errors. */
export function openEntropySource(spec: string): EntropySource {
  if (!spec) fatal("no entropy source specified with parameter tls_random_source");
  if (spec.startsWith("dev:")) {
    const path = spec.slice(4);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (err) {
      fatal(`cannot open entropy device ${path}: ${osText(err)}`);
    }
    return {
      spec,
      read(n) {
        const buf = new Uint8Array(n);
        try {
          const got = file.readSync(buf) ?? 0;
          return Promise.resolve(buf.subarray(0, got));
        } catch (err) {
          fatal(`cannot read from entropy device ${path}: ${osText(err)} -- exiting to reopen`);
        }
      },
    };
  }
  if (spec.startsWith("egd:")) return egdSource(spec, spec.slice(4));
  try {
    Deno.statSync(spec);
  } catch (err) {
    fatal(`cannot open entropy file ${spec}: ${osText(err)}`);
  }
  return {
    spec,
    read(n) {
      try {
        const data = Deno.readFileSync(spec);
        return Promise.resolve(data.subarray(0, n));
      } catch (err) {
        warn(`cannot read from entropy file ${spec}: ${osText(err)}`);
        return Promise.resolve(new Uint8Array(0));
      }
    },
  };
}

/** The EGD protocol: byte 0x01 and a count; the answer is a count and that many bytes. */
function egdSource(spec: string, path: string): EntropySource {
  return {
    spec,
    read(n) {
      return new Promise((resolve) => {
        const chunks: Uint8Array[] = [];
        const s = nodeNet.connect({ path }, () => s.write(new Uint8Array([1, Math.min(n, 255)])));
        s.on("data", (b: Uint8Array) => {
          chunks.push(b);
          const all = concat(chunks);
          if (all.length >= 1 && all.length >= 1 + all[0]) {
            s.destroy();
            resolve(all.subarray(1, 1 + all[0]));
          }
        });
        s.on("error", (err) => {
          warn(`cannot connect to EGD server ${path}: ${err.message}`);
          resolve(new Uint8Array(0));
        });
        s.on("close", () => resolve(new Uint8Array(0)));
      });
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function osText(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  return (err as Error).message.replace(/ \(os error \d+\).*$/, "");
}

/** The PRNG exchange file: read at start, rewritten with fresh pool output. */
export class ExchangeFile {
  constructor(readonly path: string) {
    try {
      const f = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
      f.close();
    } catch (err) {
      fatal(`cannot open PRNG exchange file ${path}: ${osText(err)}`);
    }
  }

  /** What the file holds (at most EXCHANGE_SIZE bytes). */
  read(): Uint8Array {
    try {
      return Deno.readFileSync(this.path).subarray(0, EXCHANGE_SIZE);
    } catch (err) {
      warn(`cannot read PRNG exchange file ${this.path}: ${osText(err)}`);
      return new Uint8Array(0);
    }
  }

  /** Replaces the contents with EXCHANGE_SIZE bytes from the pool. */
  update(pool: PrngPool): void {
    debug(`tlsmgr_prng_exch_event: update PRNG exchange file`);
    try {
      Deno.writeFileSync(this.path, pool.bytes(EXCHANGE_SIZE), { mode: 0o600 });
    } catch (err) {
      warn(`cannot write PRNG exchange file ${this.path}: ${osText(err)}`);
    }
  }
}

/** One session cache: its table and how long entries live. */
export class SessionCache {
  constructor(
    readonly type: TlsCacheTypeName,
    readonly dict: Dict,
    readonly timeout: number,
    readonly verbose: boolean,
    private readonly now = () => Date.now(),
  ) {}

  /** Opens `spec` as a new, empty table (Postfix truncates the caches at start). */
  static open(
    type: TlsCacheTypeName,
    spec: string,
    timeout: number,
    verbose: boolean,
  ): SessionCache {
    try {
      const flags = { foldFix: false, dupReplace: true, dupWarn: false, lock: true };
      // Building an empty table replaces any old one.
      const fresh = openMap(spec, { create: true, flags });
      fresh.close();
      return new SessionCache(type, openMap(spec, { write: true, flags }), timeout, verbose);
    } catch (err) {
      fatal(`open ${spec}: ${(err as Error).message}`);
    }
  }

  private fresh(value: string): Uint8Array | undefined {
    const colon = value.indexOf(":");
    const stamp = Number(value.slice(0, colon));
    if (colon <= 0 || !(stamp > 0)) return undefined;
    if (this.now() / 1000 - stamp > this.timeout) return undefined;
    return fromBase64(value.slice(colon + 1));
  }

  async lookup(id: string): Promise<Uint8Array | undefined> {
    const value = await this.dict.lookup(id);
    if (value === undefined) return undefined;
    const data = this.fresh(value);
    if (!data) await this.dict.delete(id);
    return data;
  }

  async update(id: string, session: Uint8Array): Promise<void> {
    await this.dict.update(id, `${Math.floor(this.now() / 1000)}:${toBase64(session)}`);
  }

  async delete(id: string): Promise<boolean> {
    return await this.dict.delete(id);
  }

  /** Removes every expired entry; returns how many went. */
  async cleanup(): Promise<number> {
    if (this.verbose) info(`tlsmgr_cache_run_event: start TLS ${this.type} session cache cleanup`);
    const stale: string[] = [];
    for await (const [key, value] of this.dict.sequence()) {
      if (!this.fresh(value)) stale.push(key);
    }
    for (const key of stale) await this.dict.delete(key);
    return stale.length;
  }
}

/** A session ticket key as node:tls wants it, with its validity. */
interface TicketKeyEntry {
  keys: Uint8Array;
  /** Until when (ms) new tickets use it. */
  issueUntil: number;
  /** Until when (ms) tickets made with it are still accepted. */
  acceptUntil: number;
}

/** The shared ticket keys: a current one, and older ones until their tickets expire. */
export class TicketKeys {
  private keys: TicketKeyEntry[] = [];

  constructor(
    readonly lifetime: number,
    private readonly pool: PrngPool,
    private readonly now = () => Date.now(),
  ) {}

  /** The current key (made when there is none), or the still valid key named `name`. */
  find(name?: Uint8Array): TicketKeyEntry | undefined {
    const t = this.now();
    this.keys = this.keys.filter((k) => k.acceptUntil > t);
    if (name && name.length) {
      return this.keys.find((k) =>
        k.keys.subarray(0, TICKET_KEY_NAME_LENGTH).every((b, i) => b === name[i])
      );
    }
    let current = this.keys.find((k) => k.issueUntil > t);
    if (!current) {
      const life = this.lifetime * 1000;
      current = {
        keys: this.pool.bytes(TICKET_KEYS_LENGTH),
        issueUntil: t + life,
        acceptUntil: t + 2 * life,
      };
      this.keys.unshift(current);
    }
    return current;
  }
}

/** Everything tlsmgr serves. */
export class TlsmgrState {
  constructor(
    readonly pool: PrngPool,
    readonly caches: Map<TlsCacheTypeName, SessionCache>,
    readonly tickets: TicketKeys | undefined,
  ) {}

  private cache(type: string, request: string): SessionCache | number {
    if (!(type in TlsCacheType)) {
      warn(`bogus cache type "${type}" in "${request}" request`);
      return TlsmgrStatus.ERR;
    }
    return this.caches.get(type as TlsCacheTypeName) ?? TlsmgrStatus.ERR;
  }

  /** Handles one request; returns the reply attributes. */
  async handle(req: Map<string, string>): Promise<Record<string, string | number>> {
    this.pool.mixTime();
    const request = req.get("request") ?? "";
    const type = req.get("cache_type") ?? "";
    const id = req.get("cache_id") ?? "";
    switch (request) {
      case TlsmgrRequest.SEED: {
        const size = Number(req.get("size") ?? "0");
        if (!Number.isInteger(size) || size <= 0 || size > MAX_SEED) {
          warn(`bogus seed length "${req.get("size") ?? ""}" in "seed" request`);
          return { status: TlsmgrStatus.ERR, seed: "" };
        }
        return { status: TlsmgrStatus.OK, seed: toBase64(this.pool.bytes(size)) };
      }
      case TlsmgrRequest.POLICY: {
        let cachable = 0;
        for (const t of this.caches.keys()) cachable |= TlsCacheType[t];
        return { status: TlsmgrStatus.OK, cachable };
      }
      case TlsmgrRequest.LOOKUP: {
        const c = this.cache(type, request);
        if (typeof c === "number") return { status: c, session: "" };
        const data = await c.lookup(id);
        if (data) this.pool.mix(data);
        return data
          ? { status: TlsmgrStatus.OK, session: toBase64(data) }
          : { status: TlsmgrStatus.FAIL, session: "" };
      }
      case TlsmgrRequest.UPDATE: {
        const c = this.cache(type, request);
        if (typeof c === "number") return { status: c };
        const data = fromBase64(req.get("session") ?? "");
        if (!id || !data) return { status: TlsmgrStatus.ERR };
        await c.update(id, data);
        return { status: TlsmgrStatus.OK };
      }
      case TlsmgrRequest.DELETE: {
        const c = this.cache(type, request);
        if (typeof c === "number") return { status: c };
        await c.delete(id);
        return { status: TlsmgrStatus.OK };
      }
      case TlsmgrRequest.TKTKEY: {
        const name = fromBase64(req.get("keyname") ?? "");
        if (name === undefined || (name.length && name.length !== TICKET_KEY_NAME_LENGTH)) {
          warn(`invalid session ticket key name length: ${name?.length ?? -1}`);
          return { status: TlsmgrStatus.ERR, keybuf: "" };
        }
        const key = this.tickets?.find(name);
        if (!key) return { status: TlsmgrStatus.ERR, keybuf: "" };
        return {
          status: TlsmgrStatus.OK,
          keybuf: toBase64(key.keys),
          timeout: Math.floor(key.issueUntil / 1000),
        };
      }
    }
    warn(`unknown request: "${request}"`);
    return { status: TlsmgrStatus.ERR };
  }
}

/** The session caches main.cf asks for; one file may not serve two of them. */
export function openCaches(config: Config): Map<TlsCacheTypeName, SessionCache> {
  const caches = new Map<TlsCacheTypeName, SessionCache>();
  const seen = new Map<string, string>();
  for (const type of Object.keys(TlsCacheType) as TlsCacheTypeName[]) {
    const spec = config.get(`${type}_tls_session_cache_database`).trim();
    if (!spec) continue;
    const param = `${type}_tls_session_cache_database`;
    const other = seen.get(spec);
    if (other) fatal(`do not use the same TLS cache file ${spec} for ${other} and ${param}`);
    seen.set(spec, param);
    const timeout = config.time(`${type}_tls_session_cache_timeout`, "s");
    const verbose = (parseInt(config.get(`${type}_tls_loglevel`), 10) || 0) > 0;
    caches.set(type, SessionCache.open(type, spec, timeout, verbose));
  }
  return caches;
}

/** Serves one client connection: requests until it closes. */
function serveTlsmgr(conn: net.Socket, state: TlsmgrState): Promise<void> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    let chain = Promise.resolve();
    conn.on("data", (b: Uint8Array) => {
      let lists;
      try {
        lists = reader.push(b);
      } catch {
        conn.destroy();
        return;
      }
      for (const l of lists) {
        chain = chain.then(async () => {
          const reply = await state.handle(l);
          if (!conn.destroyed) conn.write(encodeAttrs(reply));
        });
      }
    });
    conn.on("close", () => chain.then(() => resolve()));
    conn.on("error", () => resolve());
  });
}

/** A timer that does not keep the process alive. */
function every(ms: number, fn: () => void): void {
  const id = setInterval(fn, ms) as unknown as number;
  Deno.unrefTimer(id);
}

/** Runs tlsmgr under the daemon runtime: one resident process for every client. */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  let state: TlsmgrState | undefined;
  let exchange: ExchangeFile | undefined;
  const code = await eventServer(args, ctx, (conn) => serveTlsmgr(conn, state!), {
    ignoreMaxIdle: true,
    ignoreMaxUse: true,
    requestTimeout: 20 * 86400,
    async init(d: DaemonContext) {
      const config = d.config;
      const pool = new PrngPool();
      const source = openEntropySource(config.get("tls_random_source"));
      const bytes = Math.max(1, config.size("tls_random_bytes"));
      pool.mix(await source.read(bytes));
      exchange = new ExchangeFile(config.get("tls_random_exchange_name"));
      pool.mix(exchange.read());
      exchange.update(pool);
      const caches = openCaches(config);
      const lifetime = config.time("smtpd_tls_session_cache_timeout", "s");
      state = new TlsmgrState(
        pool,
        caches,
        lifetime > 0 ? new TicketKeys(lifetime, pool) : undefined,
      );
      // Reseed at pseudo-random intervals of at most tls_random_reseed_period.
      const reseedMax = Math.max(1, config.time("tls_random_reseed_period"));
      const reseed = async () => {
        pool.mix(await source.read(bytes));
        const next = 1000 * (1 + Math.floor(Math.random() * reseedMax));
        Deno.unrefTimer(setTimeout(reseed, next) as unknown as number);
      };
      Deno.unrefTimer(setTimeout(reseed, 1000 * reseedMax * Math.random()) as unknown as number);
      every(
        1000 * Math.max(1, config.time("tls_random_prng_update_period")),
        () => exchange!.update(pool),
      );
      for (const cache of caches.values()) {
        every(1000 * Math.max(1, cache.timeout), () => {
          cache.cleanup().catch((err) => warn(`${cache.type} session cache: ${err.message}`));
        });
      }
    },
  });
  // Postfix's tlsmgr saves the PRNG state on its way out.
  if (state && exchange) exchange.update(state.pool);
  for (const cache of state?.caches.values() ?? []) await cache.dict.close();
  return code;
}
