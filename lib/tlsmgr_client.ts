// The client side of tlsmgr(8): PRNG seed bytes, the TLS session caches of
// smtpd, smtp and lmtp, and the session ticket key smtpd processes share.
//
// Requests are Posthorn attribute lists over private/tlsmgr (one persistent
// connection per process); binary values (seed, session, keyname, keybuf)
// travel base64-encoded. Status values are Postfix's: 0 ok, -1 error (no
// such cache, bad request), -2 failure (not found).
//
//   seed     size=N                                → status seed
//   policy   cache_type=T                          → status cachable
//   lookup   cache_type=T cache_id=ID              → status session
//   update   cache_type=T cache_id=ID session=S    → status
//   delete   cache_type=T cache_id=ID              → status
//   tktkey   keyname=K ("" for the current key)    → status keybuf timeout
//
// A server keeps sessions under their session id (hex) in the "smtpd" cache
// and shares the ticket key (`ticketKey()`: node's 48-byte ticketKeys);
// a client keeps the session data its TLS library gives it under its own
// cache id (for example `smtp:[192.0.2.1]:25:mx.example.com`) in the "smtp"
// cache. Every failure reads as a miss: the cache is an optimisation, never
// a reason to fail a delivery.
//
// Runtime limit: Deno's node:tls (rustls underneath) does not resume TLS
// sessions: tls.Server never emits `newSession`/`resumeSession`,
// `setTicketKeys()` has no effect across processes, and a client's saved
// `session` is not reused by `tls.connect({ session })`. Until it does,
// smtpd and smtp have nothing to store here; the seed request serves
// Postfix-compatible clients (node's own generator needs no seeding).

import * as net from "node:net";
import type { Config } from "./config/mod.ts";
import { AttrReader, encodeAttrs } from "./ipc/attr.ts";
import { warn } from "./log.ts";

/** tlsmgr request names. */
export const TlsmgrRequest = {
  SEED: "seed",
  POLICY: "policy",
  LOOKUP: "lookup",
  UPDATE: "update",
  DELETE: "delete",
  TKTKEY: "tktkey",
} as const;

/** Status codes (TLS_MGR_STAT_*). */
export const TlsmgrStatus = { OK: 0, ERR: -1, FAIL: -2 } as const;

/** The cache types and their `cachable` bits (TLS_MGR_SCACHE_*). */
export const TlsCacheType = { smtpd: 1, smtp: 2, lmtp: 4 } as const;
export type TlsCacheTypeName = keyof typeof TlsCacheType;

/** The most seed bytes one request may ask for. */
export const MAX_SEED = 255;
/** Length of a session ticket key name. */
export const TICKET_KEY_NAME_LENGTH = 16;
/** node:tls ticket keys: 16 bytes name, 16 HMAC secret, 16 AES key. */
export const TICKET_KEYS_LENGTH = 48;

/** Base64 text of bytes. */
export function toBase64(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    s += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of base64 text; undefined when it is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  try {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/** A shared ticket key: node's 48 bytes (name first) and when it stops being issued. */
export interface TicketKey {
  keys: Uint8Array;
  name: Uint8Array;
  /** Unix seconds after which new tickets use another key. */
  expires: number;
}

/** A persistent connection to tlsmgr. */
export class TlsmgrClient {
  private socket?: net.Socket;
  private reader = new AttrReader();
  private queue: ((reply: Map<string, string> | null) => void)[] = [];
  private connecting?: Promise<void>;

  /** `path`: private/tlsmgr; `timeoutMs`: how long one request may take. */
  constructor(readonly path: string, readonly timeoutMs = 10_000) {}

  /** queue_directory/private/tlsmgr. */
  static fromConfig(config: Config): TlsmgrClient {
    return new TlsmgrClient(`${config.get("queue_directory")}/private/tlsmgr`);
  }

  private connect(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const s = net.connect({ path: this.path });
      s.once("connect", () => {
        this.socket = s;
        resolve();
      });
      s.on("data", (b: Uint8Array) => {
        for (const list of this.reader.push(b)) this.queue.shift()?.(list);
      });
      const gone = (err?: Error) => {
        this.socket = undefined;
        this.connecting = undefined;
        this.reader = new AttrReader();
        for (const q of this.queue.splice(0)) q(null);
        if (err) reject(err);
      };
      s.on("error", gone);
      s.on("close", () => gone());
    });
    return this.connecting;
  }

  /** One request; null (after a warning) when tlsmgr cannot be asked. */
  private async request(attrs: Record<string, string>): Promise<Map<string, string> | null> {
    try {
      await this.connect();
    } catch (err) {
      warn(`connect to ${this.path}: ${(err as Error).message}`);
      return null;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = await new Promise<Map<string, string> | null>((resolve) => {
      this.queue.push(resolve);
      timer = setTimeout(() => {
        warn(`${this.path}: timeout on ${attrs.request} request`);
        this.close();
      }, this.timeoutMs);
      this.socket!.write(encodeAttrs(attrs));
    });
    clearTimeout(timer);
    return reply;
  }

  private static status(reply: Map<string, string> | null): number {
    return reply ? Number(reply.get("status") ?? TlsmgrStatus.ERR) : TlsmgrStatus.ERR;
  }

  /** `size` (1..255) bytes from tlsmgr's PRNG pool, or null. */
  async seed(size: number): Promise<Uint8Array | null> {
    const reply = await this.request({ request: TlsmgrRequest.SEED, size: String(size) });
    if (TlsmgrClient.status(reply) !== TlsmgrStatus.OK) return null;
    return fromBase64(reply!.get("seed") ?? "") ?? null;
  }

  /** The `cachable` bits: which session caches tlsmgr keeps (0 when none or unreachable). */
  async policy(cacheType: TlsCacheTypeName): Promise<number> {
    const reply = await this.request({ request: TlsmgrRequest.POLICY, cache_type: cacheType });
    if (TlsmgrClient.status(reply) !== TlsmgrStatus.OK) return 0;
    return Number(reply!.get("cachable") ?? "0");
  }

  /** The cached session data for `cacheId`, or null. */
  async lookup(cacheType: TlsCacheTypeName, cacheId: string): Promise<Uint8Array | null> {
    const reply = await this.request({
      request: TlsmgrRequest.LOOKUP,
      cache_type: cacheType,
      cache_id: cacheId,
    });
    if (TlsmgrClient.status(reply) !== TlsmgrStatus.OK) return null;
    return fromBase64(reply!.get("session") ?? "") ?? null;
  }

  /** Stores session data under `cacheId`; true when tlsmgr kept it. */
  async update(
    cacheType: TlsCacheTypeName,
    cacheId: string,
    session: Uint8Array,
  ): Promise<boolean> {
    const reply = await this.request({
      request: TlsmgrRequest.UPDATE,
      cache_type: cacheType,
      cache_id: cacheId,
      session: toBase64(session),
    });
    return TlsmgrClient.status(reply) === TlsmgrStatus.OK;
  }

  /** Forgets `cacheId` (a session that failed to resume). */
  async delete(cacheType: TlsCacheTypeName, cacheId: string): Promise<boolean> {
    const reply = await this.request({
      request: TlsmgrRequest.DELETE,
      cache_type: cacheType,
      cache_id: cacheId,
    });
    return TlsmgrClient.status(reply) === TlsmgrStatus.OK;
  }

  /** The current ticket key (no `name`), or the still valid key called `name`; null if none. */
  async ticketKey(name?: Uint8Array): Promise<TicketKey | null> {
    const reply = await this.request({
      request: TlsmgrRequest.TKTKEY,
      keyname: name ? toBase64(name) : "",
    });
    if (TlsmgrClient.status(reply) !== TlsmgrStatus.OK) return null;
    const keys = fromBase64(reply!.get("keybuf") ?? "");
    if (!keys || keys.length !== TICKET_KEYS_LENGTH) return null;
    return {
      keys,
      name: keys.subarray(0, TICKET_KEY_NAME_LENGTH),
      expires: Number(reply!.get("timeout") ?? "0"),
    };
  }

  /** Closes the connection (the next request reconnects). */
  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
