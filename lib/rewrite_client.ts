// The client side of the trivial-rewrite(8) service, as Postfix's
// resolve_clnt and rewrite_clnt: every daemon that must know where mail for a
// recipient goes (qmgr, smtpd, verify, cleanup) or what an address looks like
// in canonical form asks the service over private/$rewrite_service_name.
//
// Protocol (Postfix's attribute lists, lib/ipc/attr.ts): the server greets,
// then one request and one reply per exchange, many exchanges per connection:
//
//   server: protocol=trivial_rewrite_protocol
//   client: request=resolve|verify sender=S address=A
//   server: flags=SERVER transport=T nexthop=H recipient=R flags=F
//   client: request=rewrite rule=local|remote address=A
//   server: flags=SERVER address=A
//
// The first `flags` is the server's own status word (always 0 from
// Posthorn's server); attribute lists are read as maps, so the second, the
// resolve result, is the one a client sees.
// One connection per process and service is kept and reused (clnt_stream);
// concurrent callers queue on it and are answered in order. A broken connection is
// reopened and the request sent again, as clnt_stream_recover does. Recent
// answers are cached for a short while, as resolve_clnt caches its last one.

import type { Config } from "./config/mod.ts";
import { type AttrList, AttrReader, encodeAttrs } from "./ipc/attr.ts";
import { debug, warn } from "./log.ts";

/** Postfix's RESOLVE_FLAG_* and RESOLVE_CLASS_* bits (same numeric values as Postfix's resolve_clnt.h). */
export const ResolveFlag: {
  FINAL: number;
  ROUTED: number;
  ERROR: number;
  FAIL: number;
  CLASS_LOCAL: number;
  CLASS_ALIAS: number;
  CLASS_VIRTUAL: number;
  CLASS_RELAY: number;
  CLASS_DEFAULT: number;
} = {
  FINAL: 1 << 0,
  ROUTED: 1 << 1,
  ERROR: 1 << 2,
  FAIL: 1 << 3,
  CLASS_LOCAL: 1 << 8,
  CLASS_ALIAS: 1 << 9,
  CLASS_VIRTUAL: 1 << 10,
  CLASS_RELAY: 1 << 11,
  CLASS_DEFAULT: 1 << 12,
};

/** The classes whose mail is delivered here (Postfix's RESOLVE_CLASS_FINAL). */
export const RESOLVE_CLASS_FINAL: number = ResolveFlag.CLASS_LOCAL | ResolveFlag.CLASS_ALIAS |
  ResolveFlag.CLASS_VIRTUAL;

/** All class bits (Postfix's RESOLVE_CLASS_MASK). */
export const RESOLVE_CLASS_MASK: number = RESOLVE_CLASS_FINAL | ResolveFlag.CLASS_RELAY |
  ResolveFlag.CLASS_DEFAULT;

/** What the service answers to a resolve request. */
export interface ResolveResult {
  transport: string;
  nexthop: string;
  recipient: string;
  flags: number;
}

/** The request names of the protocol. */
export const RewriteRequest = {
  RESOLVE: "resolve",
  /** Postfix's wire name for resolve_clnt_verify's request. */
  RESOLVE_VERIFY: "verify",
  REWRITE: "rewrite",
} as const;

/** The greeting's protocol name (Postfix's MAIL_ATTR_PROTO_TRIVIAL). */
export const REWRITE_PROTOCOL = "trivial_rewrite_protocol";

/** The service could not be reached or answered nonsense for too long. */
export class RewriteClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RewriteClientError";
  }
}

/** Names the flag bits set in `flags` ("CLASS_LOCAL|FINAL"), for logs and tests. */
export function describeResolveFlags(flags: number): string {
  const names = Object.entries(ResolveFlag).filter(([, bit]) => flags & bit).map(([n]) => n);
  const known = Object.values(ResolveFlag).reduce((a, b) => a | b, 0);
  if (flags & ~known) names.push(`0x${(flags & ~known).toString(16)}`);
  return names.length ? names.join("|") : "0";
}

/** The socket of the service: private/$rewrite_service_name under queue_directory. */
export function rewriteServicePath(config: Config): string {
  const name = config.get("rewrite_service_name") || "rewrite";
  if (name.startsWith("/")) return name;
  return `${config.get("queue_directory")}/private/${name}`;
}

/** One request waiting for its reply. */
interface Pending {
  request: Uint8Array;
  resolve(reply: AttrList): void;
  reject(err: Error): void;
}

/** Milliseconds without requests after which the connection stops holding the process. */
const RELEASE_MS = 20;

/** Seconds between reconnection attempts (Postfix sleeps one second too). */
const RETRY_PAUSE_MS = 1000;

/**
 * One connection to one service socket, shared by every caller in the
 * process. Requests go one at a time, each after the previous reply, as
 * Postfix's clients send them: the reference's server reads a request only
 * when the socket becomes readable, so a second request already buffered
 * with the first would wait forever. The connection is closed after `idleSeconds` without requests and
 * reopened after `ttlSeconds` (ipc_idle, ipc_ttl), so a long-running daemon
 * follows a restarted service.
 */
export class RewriteConnection {
  private conn: Deno.UnixConn | undefined;
  private opening: Promise<Deno.UnixConn> | undefined;
  private inFlight: Pending[] = [];
  private waiting: Pending[] = [];
  private reader = new AttrReader();
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private releaseTimer: ReturnType<typeof setTimeout> | undefined;
  private openedAt = 0;
  private lastUsed = 0;
  private busy = false;
  private greeted = false;

  constructor(
    readonly path: string,
    readonly idleSeconds = 5,
    readonly ttlSeconds = 1000,
    readonly giveUpSeconds = 3600,
  ) {}

  /** Sends one request and resolves with its reply (the reply's last value wins for a repeated name). */
  call(attrs: Record<string, string>): Promise<AttrList> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const attempt = (tries: number) => {
        const entry: Pending = {
          request: encodeAttrs(attrs),
          resolve,
          reject: (err) => {
            if (err instanceof RewriteClientError) return reject(err);
            if ((Date.now() - started) / 1000 >= this.giveUpSeconds) {
              return reject(
                new RewriteClientError(`problem talking to service ${this.path}: ${err.message}`),
              );
            }
            // The first broken pipe after a service restart is routine; say so only after that.
            if (tries > 0 || !/broken pipe|reset|closed|end-of-input/i.test(err.message)) {
              warn(`problem talking to service ${this.serviceName()}: ${err.message}`);
            } else {
              debug(`reconnecting to ${this.path}: ${err.message}`);
            }
            setTimeout(() => attempt(tries + 1), tries === 0 ? 0 : RETRY_PAUSE_MS);
          },
        };
        this.enqueue(entry);
      };
      attempt(0);
    });
  }

  /** Closes the connection; requests in progress fail. */
  close(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.releaseTimer);
    this.idleTimer = undefined;
    this.releaseTimer = undefined;
    this.drop(new RewriteClientError("client closed"));
  }

  private serviceName(): string {
    const at = this.path.lastIndexOf("/");
    const dir = this.path.lastIndexOf("/", at - 1);
    return this.path.slice(dir + 1);
  }

  private enqueue(entry: Pending): void {
    if (this.conn && Date.now() - this.openedAt > this.ttlSeconds * 1000 && !this.inFlight.length) {
      this.drop(new Error("connection time to live expired"));
    }
    if (this.conn && this.inFlight.length === 0) {
      this.send(this.conn, entry);
      return;
    }
    this.waiting.push(entry);
    if (!this.conn && !this.opening) this.open();
  }

  private open(): void {
    this.opening = Deno.connect({ transport: "unix", path: this.path });
    this.opening.then(
      (conn) => {
        this.opening = undefined;
        this.conn = conn;
        this.openedAt = Date.now();
        this.busy = false;
        this.greeted = false;
        this.reader = new AttrReader();
        this.readLoop(conn);
        const first = this.waiting.shift();
        if (first) this.send(conn, first);
      },
      (err: Error) => {
        this.opening = undefined;
        const queued = this.waiting;
        this.waiting = [];
        const reason = new Error(`connect to ${this.path}: ${describe(err)}`);
        for (const entry of queued) entry.reject(reason);
      },
    );
  }

  private send(conn: Deno.UnixConn, entry: Pending): void {
    this.inFlight.push(entry);
    this.lastUsed = Date.now();
    if (!this.busy) {
      this.busy = true;
      conn.ref();
    }
    writeAll(conn, entry.request).catch((err: Error) => {
      if (this.conn === conn) this.drop(new Error(`write: ${describe(err)}`));
    });
  }

  private async readLoop(conn: Deno.UnixConn): Promise<void> {
    const buf = new Uint8Array(16384);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (this.conn === conn) this.drop(new Error(`read: ${describe(err as Error)}`));
        return;
      }
      if (this.conn !== conn) return;
      if (n === null) {
        this.drop(new Error("premature end-of-input"));
        return;
      }
      for (const reply of this.reader.push(buf.subarray(0, n))) this.answer(reply);
    }
  }

  private answer(reply: AttrList): void {
    if (!this.greeted) {
      // Requests may already be on their way: the server reads them after its greeting.
      if (reply.get("protocol") !== REWRITE_PROTOCOL) {
        this.drop(
          new Error(`unexpected protocol from server: ${reply.get("protocol") ?? "(none)"}`),
        );
        return;
      }
      this.greeted = true;
      return;
    }
    const entry = this.inFlight.shift();
    if (!entry) {
      this.drop(new Error("unexpected reply"));
      return;
    }
    entry.resolve(reply);
    const next = this.waiting.shift();
    if (next && this.conn) this.send(this.conn, next);
    else if (next) this.waiting.unshift(next);
    else this.idle();
  }

  private idle(): void {
    this.scheduleRelease();
    this.armIdleTimer();
  }

  /**
   * An idle connection must not keep a command from exiting, so it is
   * unref'ed once no request has come for a moment. Not after every reply:
   * unref and ref on a socket with a read pending are expensive, and a
   * caller resolving in a loop sends its next request at once.
   */
  private scheduleRelease(): void {
    if (this.releaseTimer !== undefined) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (!this.busy) return;
      const recent = Date.now() - this.lastUsed < RELEASE_MS;
      if (this.inFlight.length || this.waiting.length || recent) {
        this.scheduleRelease();
        return;
      }
      this.busy = false;
      this.conn?.unref();
    }, RELEASE_MS);
  }

  /** One timer checks for ipc_idle seconds without a request (no timer per request). */
  private armIdleTimer(): void {
    if (this.idleTimer !== undefined) return;
    const check = () => {
      this.idleTimer = undefined;
      if (!this.conn) return;
      const quiet = Date.now() - this.lastUsed;
      if (this.inFlight.length === 0 && quiet >= this.idleSeconds * 1000) {
        this.drop(new Error("idle"));
        return;
      }
      this.idleTimer = setTimeout(check, Math.max(this.idleSeconds * 1000 - quiet, 10));
      Deno.unrefTimer(this.idleTimer as unknown as number);
    };
    this.idleTimer = setTimeout(check, this.idleSeconds * 1000);
    Deno.unrefTimer(this.idleTimer as unknown as number);
  }

  /** Forgets the connection and fails what was in flight on it (callers retry). */
  private drop(reason: Error): void {
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    // Requests not yet sent fail too: each retries (or gives up) on its own.
    const failed = [...this.inFlight, ...this.waiting];
    this.inFlight = [];
    this.waiting = [];
    for (const entry of failed) entry.reject(reason);
  }
}

async function writeAll(conn: Deno.UnixConn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

function describe(err: Error): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.ConnectionRefused) return "Connection refused";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.BrokenPipe) return "Broken pipe";
  if (err instanceof Deno.errors.ConnectionReset) return "Connection reset by peer";
  return err.message.replace(/ \(os error \d+\).*$/, "");
}

/** A small cache of recent answers, as resolve_clnt and rewrite_clnt keep theirs. */
class AnswerCache<T> {
  private entries = new Map<string, { value: T; expires: number }>();
  constructor(readonly size: number, readonly ttlMs: number) {}

  get(key: string): T | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    if (hit.expires < Date.now()) return undefined;
    this.entries.set(key, hit);
    return hit.value;
  }

  set(key: string, value: T): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + this.ttlMs });
    if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(): void {
    this.entries.clear();
  }
}

const connections = new Map<string, RewriteConnection>();
const resolveCache = new AnswerCache<ResolveResult>(64, 30_000);
const rewriteCache = new AnswerCache<string>(64, 30_000);

/** The process's connection to the service `config` names. */
function connectionFor(config: Config): RewriteConnection {
  const path = rewriteServicePath(config);
  let conn = connections.get(path);
  if (!conn) {
    conn = new RewriteConnection(
      path,
      timeOr(config, "ipc_idle", 5),
      timeOr(config, "ipc_ttl", 1000),
      timeOr(config, "ipc_timeout", 3600),
    );
    connections.set(path, conn);
  }
  return conn;
}

function timeOr(config: Config, name: string, fallback: number): number {
  const m = /^(\d+)([smhdw]?)$/.exec(config.get(name));
  if (!m) return fallback;
  const unit: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  return parseInt(m[1], 10) * unit[m[2]];
}

/** Reads a resolve reply; a reply without a transport is a protocol error. */
function resolveReply(reply: AttrList): ResolveResult {
  const transport = reply.get("transport");
  const nexthop = reply.get("nexthop");
  const recipient = reply.get("recipient");
  const flags = Number(reply.get("flags"));
  if (transport === undefined || nexthop === undefined || recipient === undefined || isNaN(flags)) {
    throw new RewriteClientError("malformed reply from trivial-rewrite service");
  }
  return { transport, nexthop, recipient, flags };
}

async function resolveWith(
  request: string,
  config: Config,
  sender: string,
  address: string,
): Promise<ResolveResult> {
  const conn = connectionFor(config);
  const key = `${conn.path}\0${request}\0${sender}\0${address}`;
  const cached = resolveCache.get(key);
  if (cached) return { ...cached };
  const reply = await conn.call({ request, sender, address });
  const result = resolveReply(reply);
  // A failed lookup is temporary: do not remember it.
  if (!(result.flags & ResolveFlag.FAIL)) resolveCache.set(key, result);
  return { ...result };
}

/** Resolves a recipient (with the sender, for sender-dependent maps) through the trivial-rewrite service (private/rewrite under queue_directory, name from rewrite_service_name). */
export function resolveAddress(
  config: Config,
  sender: string,
  address: string,
): Promise<ResolveResult> {
  return resolveWith(RewriteRequest.RESOLVE, config, sender, address);
}

/** Like resolveAddress for verify's probes: Postfix's "resolve_verify" request ("verify" on the wire, as Postfix sends it). */
export function resolveVerifyAddress(
  config: Config,
  sender: string,
  address: string,
): Promise<ResolveResult> {
  return resolveWith(RewriteRequest.RESOLVE_VERIFY, config, sender, address);
}

/** Rewrites an address in a context ("local" or "remote", the canonical_classes rule sets). */
export async function rewriteAddress(
  config: Config,
  rule: string,
  address: string,
): Promise<string> {
  const conn = connectionFor(config);
  const key = `${conn.path}\0${rule}\0${address}`;
  const cached = rewriteCache.get(key);
  if (cached !== undefined) return cached;
  const reply = await conn.call({ request: RewriteRequest.REWRITE, rule, address });
  const result = reply.get("address");
  if (result === undefined) {
    throw new RewriteClientError("malformed reply from trivial-rewrite service");
  }
  rewriteCache.set(key, result);
  return result;
}

/** Closes every connection and empties the caches (tests, and daemons before exit). */
export function closeRewriteClients(): void {
  for (const conn of connections.values()) conn.close();
  connections.clear();
  resolveCache.clear();
  rewriteCache.clear();
}
