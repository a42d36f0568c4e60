// proxy:type:name tables, as Postfix's dict_proxy: every lookup, update,
// delete and sequence step goes to the proxymap service (proxywrite for a
// table opened for writing), which opens the table once and shares it among
// its clients. A process keeps one connection per service, shared by all
// its proxy tables; a broken connection is reopened once per request.
//
// The socket is private/SERVICE when the client can reach it (daemons, the
// super-user), else public/SERVICE (ordinary users' commands, as Postfix's
// client falls back to the public class).

import { type AttrList, AttrReader, encodeAttrs } from "../lib/ipc/attr.ts";
import {
  defaultFlags,
  type Dict,
  DictError,
  type DictFlags,
  type OpenOptions,
  type TableConfig,
  unsupported,
  type UpdateResult,
} from "./dict.ts";

/** The proxymap service's protocol name, announced when a client connects. */
export const PROXYMAP_PROTOCOL = "proxymap_protocol";

/** The proxymap status codes (Postfix's PROXY_STAT_*). */
export const ProxyStatus = {
  ok: 0,
  /** The key is not in the table. */
  noKey: 1,
  /** A temporary failure: try again later. */
  retry: 2,
  /** A malformed request. */
  bad: 3,
  /** The table is not listed in proxy_read_maps / proxy_write_maps. */
  deny: 4,
  /** The table is misconfigured. */
  config: 5,
} as const;

/** Postfix's sequence functions (DICT_SEQ_FUN_FIRST, _NEXT). */
export const SEQ_FIRST = 0;
export const SEQ_NEXT = 1;

/** Postfix's DICT_FLAG_* bits for the flags a request carries. */
const flagBits: [keyof DictFlags, number][] = [
  ["dupWarn", 1 << 0],
  ["dupIgnore", 1 << 1],
  ["try0Null", 1 << 2],
  ["try1Null", 1 << 3],
  ["lock", 1 << 6],
  ["dupReplace", 1 << 7],
  ["sync", 1 << 8],
  ["foldFix", 1 << 14],
  ["foldMul", 1 << 15],
  ["utf8", 1 << 19],
];

/** DICT_FLAG_FIXED and DICT_FLAG_PATTERN, the table kinds an open request reports. */
export const DICT_FLAG_FIXED = 1 << 4;
export const DICT_FLAG_PATTERN = 1 << 5;

/** Encodes table flags as Postfix's bit mask. */
export function encodeDictFlags(flags: DictFlags): number {
  let bits = 0;
  for (const [name, bit] of flagBits) if (flags[name]) bits |= bit;
  return bits;
}

/** Decodes Postfix's bit mask into table flags (bits Posthorn has no flag for are ignored). */
export function decodeDictFlags(bits: number): DictFlags {
  const flags = defaultFlags();
  for (const [name, bit] of flagBits) flags[name] = (bits & bit) !== 0;
  return flags;
}

/** Seconds of a time value ("3600s", "1h", "60"). */
function seconds(value: string, fallback: number): number {
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  if (!m) return fallback;
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]]!;
  return Number(m[1]) * unit;
}

/** One connection to a proxymap service, requests one at a time. */
class ProxyStream {
  private conn?: Deno.UnixConn;
  private reader = new AttrReader();
  private pending: AttrList[] = [];
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly queueDirectory: string,
    readonly service: string,
    private readonly timeoutMs: number,
  ) {}

  /** private/SERVICE when this process can reach it, else public/SERVICE. */
  private path(): string {
    const priv = `${this.queueDirectory}/private/${this.service}`;
    try {
      Deno.statSync(priv);
      return priv;
    } catch {
      return `${this.queueDirectory}/public/${this.service}`;
    }
  }

  /** Sends one request and returns its reply; requests queue behind each other. */
  request(attrs: Record<string, string | number>): Promise<AttrList> {
    const run = this.tail.then(() => this.exchangeWithRetry(attrs));
    this.tail = run.catch(() => {});
    return run;
  }

  private async exchangeWithRetry(attrs: Record<string, string | number>): Promise<AttrList> {
    try {
      return await this.exchange(attrs);
    } catch {
      // The service may have exited (max_idle, max_use): reconnect once.
      this.disconnect();
      try {
        return await this.exchange(attrs);
      } catch (err) {
        this.disconnect();
        throw new DictError(`${this.service} service: ${(err as Error).message}`, "retry");
      }
    }
  }

  private async exchange(attrs: Record<string, string | number>): Promise<AttrList> {
    if (!this.conn) {
      const path = this.path();
      try {
        this.conn = await Deno.connect({ transport: "unix", path });
      } catch (err) {
        throw new Error(`connect to ${path}: ${(err as Error).message}`);
      }
      this.reader = new AttrReader();
      this.pending = [];
    }
    const data = encodeAttrs(attrs);
    for (let off = 0; off < data.length;) off += await this.conn.write(data.subarray(off));
    return await this.reply();
  }

  /** The next list that carries a status (the protocol announcement is skipped). */
  private async reply(): Promise<AttrList> {
    const timer = setTimeout(() => this.disconnect(), this.timeoutMs);
    try {
      const buf = new Uint8Array(8192);
      for (;;) {
        while (this.pending.length) {
          const list = this.pending.shift()!;
          if (list.has("status")) return list;
        }
        const conn = this.conn;
        if (!conn) throw new Error("timeout");
        const n = await conn.read(buf);
        if (n === null) throw new Error("lost connection");
        this.pending.push(...this.reader.push(buf.subarray(0, n)));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private disconnect(): void {
    try {
      this.conn?.close();
    } catch {
      // Already closed.
    }
    this.conn = undefined;
  }

  close(): void {
    this.disconnect();
  }
}

/** The shared streams of this process, by socket folder and service. */
const streams = new Map<string, ProxyStream>();

function streamFor(config: TableConfig, write: boolean): ProxyStream {
  const queueDirectory = config.get("queue_directory");
  const service = write
    ? config.get("proxywrite_service_name") || "proxywrite"
    : config.get("proxymap_service_name") || "proxymap";
  const key = `${queueDirectory}\0${service}`;
  let stream = streams.get(key);
  if (!stream) {
    const timeout = seconds(config.get("ipc_timeout"), 3600);
    stream = new ProxyStream(queueDirectory, service, 1000 * timeout);
    streams.set(key, stream);
  }
  return stream;
}

/** Closes every shared connection (tests, or a process about to exit). */
export function closeProxyStreams(): void {
  for (const s of streams.values()) s.close();
  streams.clear();
}

/** A table served by proxymap. */
class ProxyDict implements Dict {
  readonly type = "proxy";
  readonly flags: DictFlags;
  private stream?: ProxyStream;

  constructor(
    readonly name: string,
    flags: Partial<DictFlags>,
    private readonly write: boolean,
    private readonly config: () => TableConfig,
  ) {
    this.flags = defaultFlags(flags);
  }

  private get proxy(): ProxyStream {
    return this.stream ??= streamFor(this.config(), this.write);
  }

  private async ask(request: string, extra: Record<string, string | number>): Promise<AttrList> {
    return await this.proxy.request({
      request,
      table: this.name,
      flags: encodeDictFlags(this.flags),
      ...extra,
    });
  }

  /** The DictError for a status that is not an answer. */
  private failure(status: number, op: string): DictError {
    const service = this.proxy.service;
    if (status === ProxyStatus.deny) {
      return new DictError(`${service} service is not configured for table "${this.name}"`);
    }
    if (status === ProxyStatus.bad) {
      return new DictError(`${service} ${op} failed for table "${this.name}": invalid request`);
    }
    if (status === ProxyStatus.config) {
      return new DictError(
        `${service} ${op} failed for table "${this.name}": configuration error`,
      );
    }
    return new DictError(`${service} ${op} failed for table "${this.name}"`, "retry");
  }

  async lookup(key: string): Promise<string | undefined> {
    const reply = await this.ask("lookup", { key });
    const status = Number(reply.get("status"));
    if (status === ProxyStatus.ok) return reply.get("value") ?? "";
    if (status === ProxyStatus.noKey) return undefined;
    throw this.failure(status, "lookup");
  }

  async update(key: string, value: string): Promise<UpdateResult> {
    if (!this.write) throw unsupported("proxy", this.name, "update");
    const reply = await this.ask("update", { key, value });
    const status = Number(reply.get("status"));
    if (status === ProxyStatus.ok) return "stored";
    if (status === ProxyStatus.noKey) return "duplicate";
    throw this.failure(status, "update");
  }

  async delete(key: string): Promise<boolean> {
    if (!this.write) throw unsupported("proxy", this.name, "delete");
    const reply = await this.ask("delete", { key });
    const status = Number(reply.get("status"));
    if (status === ProxyStatus.ok) return true;
    if (status === ProxyStatus.noKey) return false;
    throw this.failure(status, "delete");
  }

  async *sequence(): AsyncIterable<[string, string]> {
    let fn = SEQ_FIRST;
    for (;;) {
      const reply = await this.ask("sequence", { function: fn });
      const status = Number(reply.get("status"));
      if (status === ProxyStatus.noKey) return;
      if (status !== ProxyStatus.ok) throw this.failure(status, "sequence");
      yield [reply.get("key") ?? "", reply.get("value") ?? ""];
      fn = SEQ_NEXT;
    }
  }

  close(): Promise<void> {
    // The connection is shared with the process's other proxy tables.
    return Promise.resolve();
  }
}

/**
 * Opens proxy:NAME (NAME is `type:table`); nothing is sent until the first
 * request. `loadConfig` reads main.cf when the caller passed no
 * configuration (daemons get MAIL_CONFIG from the master).
 */
export function openProxy(
  name: string,
  options: OpenOptions,
  loadConfig: () => TableConfig,
): Dict {
  const colon = name.indexOf(":");
  if (colon <= 0) {
    throw new DictError(`open dictionary: expecting "type:name" form instead of "proxy:${name}"`);
  }
  if (name.startsWith("proxy:")) {
    throw new DictError(`open proxy:${name}: a proxy table cannot name another proxy table`);
  }
  if (options.create) throw unsupported("proxy", name, "create");
  let config = options.config;
  return new ProxyDict(name, options.flags ?? {}, !!options.write, () => config ??= loadConfig());
}
