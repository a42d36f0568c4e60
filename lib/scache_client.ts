// The client side of scache(8), the shared connection cache, and the
// protocol both sides speak.
//
// A delivery agent (the smtp client) that has finished a transaction on a
// connection it could reuse hands the connection's descriptor to scache
// under its physical endpoint label (transport, address, port) and binds
// its logical destination label (transport, domain, port) to that
// endpoint; a later delivery asks by destination or by endpoint and gets a
// descriptor back, the cache's copy removed. Properties are opaque strings
// the agent needs to re-activate the connection (scache does not look at
// them). Entries live `ttl` seconds at most, capped by
// connection_cache_ttl_limit; an expired connection is closed without any
// protocol goodbye.
//
// Usage (the caller owns every descriptor it passes or receives):
//
//   const cache = ScacheClient.fromConfig(config);
//   // after a successful transaction, instead of QUIT:
//   await cache.save("smtp:example.com:25", "smtp:192.0.2.1:25",
//     { dest: "", endp: "mx1.example.com 192.0.2.1" }, fd, 2);
//   socket.destroy();                      // our copy; scache keeps its own
//   // later, before connecting:
//   const hit = await cache.findDest("smtp:example.com:25")
//     ?? await cache.findEndp("smtp:192.0.2.1:25");
//   if (hit) sock = new net.Socket({ fd: hit.fd, readable: true, writable: true });
//
// A descriptor can only be handed over when the caller knows it: node:net's
// net.connect() sockets do not expose one, so an agent that caches builds its
// TCP connection with lib/ffi and wraps the descriptor in
// `new net.Socket({ fd })`. Any failure to talk to scache (not running, bad
// reply, protocol timeout) is logged as a warning and reads as a cache miss
// or a failed save: the cache is an optimisation, never a reason to defer.
//
// Wire format: Posthorn attribute lists (name NUL value NUL ..., NUL), kept
// in order because save_dest carries two `label`s and the find_dest reply two
// `property`s, as in Postfix. Descriptor passing is lock-step so that a
// descriptor (one data byte with SCM_RIGHTS) is never read as stream data:
//
//   save_endp:  C: request=save_endp ttl label property
//               S: dummy=            (or status=N when the request is bad)
//               C: <descriptor>
//               S: status=N
//   find_endp:  C: request=find_endp label
//               S: status=N property          (N != 0: a miss, nothing follows)
//               C: dummy=
//               S: <descriptor>
//   save_dest:  C: request=save_dest ttl label(dest) property label(endp)
//               S: status=N
//   find_dest:  C: request=find_dest label
//               S: status=N property(dest) property(endp)   then as find_endp
//
// Status values are Postfix's: 0 ok, 1 bad request, 2 failure (or a miss).

import type { Config } from "./config/mod.ts";
import {
  closeFd,
  connectUnix,
  pollAsync,
  POLLIN,
  readFd,
  recvFd,
  sendFd,
  setNonblocking,
  writeFd,
} from "./ffi/libc.ts";
import { warn } from "./log.ts";

/** scache request names. */
export const ScacheRequest = {
  SAVE_ENDP: "save_endp",
  FIND_ENDP: "find_endp",
  SAVE_DEST: "save_dest",
  FIND_DEST: "find_dest",
} as const;

/** scache status codes (SCACHE_STAT_*). */
export const ScacheStatus = { OK: 0, BAD: 1, FAIL: 2 } as const;

/** One attribute list, in order (names may repeat). */
export type AttrPairs = [string, string][];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes pairs as one attribute list. */
export function encodePairs(pairs: AttrPairs): Uint8Array<ArrayBuffer> {
  let text = "";
  for (const [name, value] of pairs) {
    if (!name || name.includes("\0") || value.includes("\0")) {
      throw new Error(`bad attribute: ${JSON.stringify(name)}`);
    }
    text += `${name}\0${value}\0`;
  }
  return encoder.encode(text + "\0");
}

/** Parses one complete list at the start of `data`; null when incomplete. */
export function parsePairs(data: Uint8Array): { pairs: AttrPairs; used: number } | null {
  const pairs: AttrPairs = [];
  let at = 0;
  for (;;) {
    const nameEnd = data.indexOf(0, at);
    if (nameEnd < 0) return null;
    if (nameEnd === at) return { pairs, used: at + 1 };
    const valueEnd = data.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return null;
    pairs.push([
      decoder.decode(data.subarray(at, nameEnd)),
      decoder.decode(data.subarray(nameEnd + 1, valueEnd)),
    ]);
    at = valueEnd + 1;
  }
}

/** The values of `name` in a list, in order. */
export function values(pairs: AttrPairs, name: string): string[] {
  return pairs.filter(([n]) => n === name).map(([, v]) => v);
}

/** A protocol failure: end of input, time out, or an unusable reply. */
export class ScacheProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScacheProtocolError";
  }
}

/**
 * Lock-step attribute lists and descriptors over a raw unix stream socket
 * (both sides use it). Reads never go past the list they wait for, as long
 * as the peer follows the protocol above.
 */
export class ScacheChannel {
  private buffer = new Uint8Array(0);

  constructor(readonly fd: number, readonly timeoutMs: number) {
    setNonblocking(fd, true);
  }

  /** Waits until the socket is readable; false on time out. */
  private async readable(): Promise<boolean> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (await pollAsync([{ fd: this.fd, events: POLLIN }], Math.min(left, 1000)) > 0) {
        return true;
      }
    }
  }

  /** The next list; null at end of input. */
  async read(): Promise<AttrPairs | null> {
    const chunk = new Uint8Array(4096);
    for (;;) {
      const parsed = parsePairs(this.buffer);
      if (parsed) {
        this.buffer = this.buffer.slice(parsed.used);
        return parsed.pairs;
      }
      if (!(await this.readable())) throw new ScacheProtocolError("timeout");
      const n = readFd(this.fd, chunk);
      if (n === 0) return null;
      if (n < 0) continue;
      const merged = new Uint8Array(this.buffer.length + n);
      merged.set(this.buffer);
      merged.set(chunk.subarray(0, n), this.buffer.length);
      this.buffer = merged;
    }
  }

  /** Sends one list. */
  async write(pairs: AttrPairs): Promise<void> {
    const data = encodePairs(pairs);
    let at = 0;
    const deadline = Date.now() + this.timeoutMs;
    while (at < data.length) {
      const n = writeFd(this.fd, data.subarray(at));
      if (n > 0) at += n;
      else if (Date.now() > deadline) throw new ScacheProtocolError("timeout");
      else await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Receives one descriptor; throws when none comes. */
  async receiveFd(): Promise<number> {
    if (this.buffer.length > 0) throw new ScacheProtocolError("data before descriptor");
    if (!(await this.readable())) throw new ScacheProtocolError("timeout");
    const fd = recvFd(this.fd);
    if (fd < 0) throw new ScacheProtocolError("no descriptor received");
    return fd;
  }
}

/** A cached connection handed back: the descriptor is the caller's now. */
export interface ScacheHit {
  fd: number;
  /** The endpoint properties given to save/saveEndp. */
  endpProp: string;
  /** The destination properties given to save/saveDest ("" from findEndp). */
  destProp: string;
}

/** A connection to scache, kept for the life of the process (reconnected on failure). */
export class ScacheClient {
  private channel?: ScacheChannel;
  private busy: Promise<unknown> = Promise.resolve();

  /** `path`: the scache socket; `timeoutMs`: connection_cache_protocol_timeout. */
  constructor(readonly path: string, readonly timeoutMs = 5000) {}

  /** private/$connection_cache_service_name under queue_directory. */
  static fromConfig(config: Config): ScacheClient {
    const name = config.get("connection_cache_service_name") || "scache";
    return new ScacheClient(
      `${config.get("queue_directory")}/private/${name}`,
      config.time("connection_cache_protocol_timeout") * 1000,
    );
  }

  /** Runs one exchange at a time; a failure drops the connection and yields `fallback`. */
  private exchange<T>(what: string, fallback: T, fn: (c: ScacheChannel) => Promise<T>): Promise<T> {
    const run = async () => {
      try {
        this.channel ??= new ScacheChannel(connectUnix(this.path), this.timeoutMs);
        return await fn(this.channel);
      } catch (err) {
        warn(`${what}: ${this.path}: ${(err as Error).message}`);
        this.close();
        return fallback;
      }
    };
    const result = this.busy.then(run, run);
    this.busy = result;
    return result;
  }

  /** Caches descriptor `fd` under `endpLabel` for `ttl` seconds; true when scache took it. */
  saveEndp(ttl: number, endpLabel: string, endpProp: string, fd: number): Promise<boolean> {
    return this.exchange("scache_clnt_save_endp", false, async (c) => {
      await c.write([
        ["request", ScacheRequest.SAVE_ENDP],
        ["ttl", String(ttl)],
        ["label", endpLabel],
        ["property", endpProp],
      ]);
      const go = await c.read();
      if (!go) throw new ScacheProtocolError("lost connection");
      if (values(go, "status").length) return false;
      sendFd(c.fd, fd);
      const reply = await c.read();
      if (!reply) throw new ScacheProtocolError("lost connection");
      return Number(values(reply, "status")[0] ?? "-1") === ScacheStatus.OK;
    });
  }

  /** Binds destination `destLabel` to endpoint `endpLabel` for `ttl` seconds. */
  saveDest(ttl: number, destLabel: string, destProp: string, endpLabel: string): Promise<boolean> {
    return this.exchange("scache_clnt_save_dest", false, async (c) => {
      await c.write([
        ["request", ScacheRequest.SAVE_DEST],
        ["ttl", String(ttl)],
        ["label", destLabel],
        ["property", destProp],
        ["label", endpLabel],
      ]);
      const reply = await c.read();
      if (!reply) throw new ScacheProtocolError("lost connection");
      return Number(values(reply, "status")[0] ?? "-1") === ScacheStatus.OK;
    });
  }

  /**
   * Caches a connection the way the smtp client does: the descriptor under
   * its endpoint, then the destination bound to that endpoint (skipped when
   * `destLabel` is ""). The caller still owns `fd` and closes its copy.
   */
  async save(
    destLabel: string,
    endpLabel: string,
    props: { dest: string; endp: string },
    fd: number,
    ttl: number,
  ): Promise<boolean> {
    if (!(await this.saveEndp(ttl, endpLabel, props.endp, fd))) return false;
    if (destLabel) return await this.saveDest(ttl, destLabel, props.dest, endpLabel);
    return true;
  }

  /** A cached connection to endpoint `label`, or null. */
  findEndp(label: string): Promise<ScacheHit | null> {
    return this.exchange("scache_clnt_find_endp", null, async (c) => {
      await c.write([["request", ScacheRequest.FIND_ENDP], ["label", label]]);
      const reply = await c.read();
      if (!reply) throw new ScacheProtocolError("lost connection");
      if (Number(values(reply, "status")[0] ?? "-1") !== ScacheStatus.OK) return null;
      await c.write([["dummy", ""]]);
      const fd = await c.receiveFd();
      return { fd, endpProp: values(reply, "property")[0] ?? "", destProp: "" };
    });
  }

  /** A cached connection for destination `label` (through its endpoints), or null. */
  findDest(label: string): Promise<ScacheHit | null> {
    return this.exchange("scache_clnt_find_dest", null, async (c) => {
      await c.write([["request", ScacheRequest.FIND_DEST], ["label", label]]);
      const reply = await c.read();
      if (!reply) throw new ScacheProtocolError("lost connection");
      if (Number(values(reply, "status")[0] ?? "-1") !== ScacheStatus.OK) return null;
      const [destProp = "", endpProp = ""] = values(reply, "property");
      await c.write([["dummy", ""]]);
      const fd = await c.receiveFd();
      return { fd, destProp, endpProp };
    });
  }

  /** Closes the connection to scache (the next request reconnects). */
  close(): void {
    if (this.channel) closeFd(this.channel.fd);
    this.channel = undefined;
  }
}
