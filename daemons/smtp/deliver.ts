// The smtp/lmtp delivery procedure for one request: next hop to server
// addresses, servers tried in order until every recipient is decided
// (smtp_mx_address_limit addresses, smtp_mx_session_limit sessions), each
// recipient sent, bounced or deferred with Postfix's log text. A temporary
// failure at a server that is not the last leaves the recipient for the
// next one, as Postfix does; the last server's failure is final.

import type { DeliverRecipient } from "../../lib/deliver/request.ts";
import type { DeliverySession, RecipientStatus } from "../../lib/deliver/agent.ts";
import { readMessage } from "../../lib/deliver/message.ts";
import { DsnNotify } from "../../lib/dsn/status.ts";
import { queueFilePath } from "../../lib/queue/layout.ts";
import type { QueueLayout } from "../../lib/queue/layout.ts";
import { info, warn } from "../../lib/log.ts";
import {
  type Destination,
  parseDestination,
  parseNexthop,
  type ResolveDeps,
  resolveDestination,
  type ServerAddress,
} from "./nexthop.ts";
import type { SmtpSettings } from "./settings.ts";
import { connectSocket, connectTcp, SmtpStream } from "./stream.ts";
import {
  Conversation,
  type ConversationEnd,
  type ConversationHooks,
  isEightBit,
  type ServerFeatures,
} from "./session.ts";
import { type Failure, localFailure, serverName, softenedFailure } from "./failure.ts";
import { TLS_HANDSHAKE_FAILURE, tlsHook, type TlsPolicy, tlsPolicyFor, wrapperTls } from "./tls.ts";
import { saslHook, saslPasswordFor } from "./sasl.ts";
import { outgoingMessage } from "./content.ts";
import type { GenericMapper } from "./generic.ts";
import { type CachedSession, cachePolicy, type ConnectionCache } from "./cache.ts";
import { closeFd } from "../../lib/ffi/libc.ts";
import { applySmtpChecks, type SmtpChecks } from "./header_checks.ts";
import * as net from "node:net";
import type { ReplyFilter, StatusFilter } from "./filters.ts";
import { type Dict, openMap } from "../../maps/mod.ts";

/** What the delivery procedure needs besides the request. */
export interface SmtpEnv {
  settings: SmtpSettings;
  resolve: ResolveDeps;
  layout: QueueLayout;
  generic: GenericMapper;
  /** Where relative table names are opened from. */
  configDir?: string;
  /** smtp_reply_filter. */
  replyFilter?: ReplyFilter;
  /** smtp_delivery_status_filter. */
  statusFilter?: StatusFilter;
  /** smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks, smtp_body_checks. */
  checks?: SmtpChecks;
  /** The connection cache (scache), when this service uses one. */
  cache?: ConnectionCache;
}

/** Delivers one request over SMTP or LMTP; an unexpected error defers what is left. */
export async function deliverSmtp(session: DeliverySession, env: SmtpEnv): Promise<void> {
  try {
    await deliverRequest(session, env);
  } catch (err) {
    warn(`${session.request.queueId}: ${(err as Error).stack ?? err}`);
    await session.deferSite({ dsn: "4.3.0", relay: "none", text: "mail system internal error" });
  }
}

/** The session's reporting calls, through smtp_delivery_status_filter when one is set. */
function reporter(session: DeliverySession, filter: StatusFilter | undefined) {
  const apply = async (st: RecipientStatus): Promise<RecipientStatus> => {
    if (!filter) return st;
    const f = await filter(st.dsn, st.text);
    return { ...st, dsn: f.dsn, text: f.text };
  };
  return {
    sent: async (r: DeliverRecipient, st: RecipientStatus) => session.sent(r, await apply(st)),
    bounced: async (r: DeliverRecipient, st: RecipientStatus) => {
      const f = await apply(st);
      // The filter may turn a bounce into a deferral (5.x.x to 4.x.x) or back.
      return f.dsn.startsWith("4") ? session.deferred(r, f) : session.bounced(r, f);
    },
    deferred: async (r: DeliverRecipient, st: RecipientStatus) => {
      const f = await apply(st);
      return f.dsn.startsWith("5") ? session.bounced(r, f) : session.deferred(r, f);
    },
    /** Every recipient still `pending` takes the site's status. */
    deferSite: async (st: RecipientStatus, pending: Iterable<DeliverRecipient>) => {
      const f = await apply(st);
      if (!f.dsn.startsWith("5")) return session.deferSite(f);
      for (const r of pending) await session.bounced(r, f);
    },
  };
}

async function deliverRequest(session: DeliverySession, env: SmtpEnv): Promise<void> {
  const report = reporter(session, env.statusFilter);
  const s = env.settings;
  const req = session.request;
  let dests: Destination[];
  try {
    dests = parseNexthop(req.nexthop, s);
    if (!s.lmtp) {
      for (const relay of s.fallbackRelay) dests.push(parseDestination(relay, s));
    }
  } catch (err) {
    await report.deferSite(
      { dsn: "4.3.5", relay: "none", text: (err as Error).message },
      session.request.recipients,
    );
    return;
  }
  if (!dests.length) {
    await report.deferSite(
      { dsn: "4.3.5", relay: "none", text: "empty next-hop destination" },
      session.request.recipients,
    );
    return;
  }
  const pending = new Set<DeliverRecipient>(req.recipients);
  const lastFailure = new Map<DeliverRecipient, Failure>();
  let siteFailure: Failure | undefined;
  let messageBytes: ((features: ServerFeatures) => Uint8Array | Failure) | undefined;
  outer:
  for (let di = 0; di < dests.length; di++) {
    const lastDest = di === dests.length - 1;
    const resolved = await resolveDestination(dests[di], s, env.resolve);
    if (!Array.isArray(resolved)) {
      siteFailure = {
        dsn: resolved.dsn,
        text: resolved.text,
        hard: !resolved.soft,
        relay: "none",
        diagType: "X-Postfix",
        diagText: resolved.text,
      };
      continue;
    }
    // smtp_mx_address_limit addresses, of which smtp_mx_session_limit may talk.
    let list = s.mxAddressLimit > 0 ? resolved.slice(0, s.mxAddressLimit) : resolved;
    const cp = cacheUse(env, req.flags, dests[di]);
    // A session cached for this destination goes first (its server, as it was then).
    let preloaded = cp.load ? await env.cache!.findDest(dests[di].text) : undefined;
    if (preloaded) {
      const p = preloaded.server;
      list = [p, ...list.filter((a) => a.addr !== p.addr || a.port !== p.port)];
    }
    const takeCached = async (server: ServerAddress): Promise<CachedSession | undefined> => {
      const p = preloaded;
      if (p && p.server.addr === server.addr && p.server.port === server.port) {
        preloaded = undefined;
        return p;
      }
      return cp.load && !server.unix ? await env.cache!.findEndp(server) : undefined;
    };
    let sessions = 0;
    try {
      for (let ai = 0; ai < list.length; ai++) {
        if (!pending.size) break outer;
        const server = list[ai];
        const final = lastDest &&
          (ai === list.length - 1 || (s.mxSessionLimit > 0 && sessions + 1 >= s.mxSessionLimit));
        const policy = await tlsPolicyFor(s, dests[di], server, env.resolve.dns);
        if ("failure" in policy) {
          siteFailure = policy.failure;
          continue;
        }
        messageBytes ??= await messageFor(
          env,
          req.queueName,
          req.queueId,
          req.dataOffset,
          req.encoding,
        );
        // Uses of the session that delivered (conn_use= in the log when above 1).
        let connUse = 1;
        const talk = async (p: TlsPolicy) => {
          // A cached session is plaintext: only where the policy lets plaintext do.
          let reuse = p.level === "none" || p.level === "may"
            ? await takeCached(server)
            : undefined;
          for (;;) {
            const end = await talkOnce(p, reuse);
            if (!("stale" in end) || !end.stale) return end;
            // The server closed the cached session meanwhile, or refused RSET: anew.
            reuse = undefined;
          }
        };
        const talkOnce = async (p: TlsPolicy, reuse: CachedSession | undefined) => {
          const opened = reuse
            ? reusedStream(reuse, s, env.replyFilter)
            : await openStream(server, s, p, env.layout.queueDirectory, env.replyFilter);
          if (!(opened instanceof SmtpStream)) return opened;
          const uses = reuse ? reuse.uses + 1 : 1;
          const openedAt = reuse ? reuse.opened : Date.now();
          connUse = uses;
          const hooks: ConversationHooks = {
            tls: p.level === "none" || s.tls.wrapperMode
              ? undefined
              : tlsHook(opened, server, s, p),
            auth: s.sasl.enable
              ? saslHook(opened, server, s, await saslPasswordFor(s, req, dests[di], server))
              : undefined,
            message: messageBytes!,
            envelope: (a) => env.generic.envelope(a),
            setupDone: () => session.connSetup = Date.now() / 1000,
            verifyOnly: session.verifyOnly,
            discardKeywords: await discardKeywordsFor(s, server, env.configDir),
            reused: reuse ? { features: reuse.features } : undefined,
            offer: async (features) => {
              const cache = env.cache;
              if (!cache || !cp.store || opened.fd === undefined || opened.encrypted) return false;
              if (!cache.reusable(uses, openedAt)) return false;
              const info = { server, features, uses, opened: openedAt };
              // Our socket is closed before scache can hand the session on.
              const fd = await opened.detach();
              const taken = await cache.save(dests[di].text, info, fd);
              // scache holds its own copy: ours goes without a word to the server.
              if (taken) closeFd(fd);
              else opened.reattach(fd);
              return taken;
            },
          };
          return await new Conversation(opened, server, s, req, [...pending], hooks).run();
        };
        let end = await talk(policy);
        // TLS_README: a failed handshake at the may level is retried in the clear.
        const handshakeFailed = "results" in end && !end.results.length &&
          end.siteFailure?.text === TLS_HANDSHAKE_FAILURE;
        if (handshakeFailed && policy.level === "may") {
          end = await talk({ ...policy, level: "none" });
        }
        if (!("results" in end)) {
          siteFailure = end;
          // Postfix logs each failed connection, the last one too.
          info(end.text);
          continue;
        }
        sessions++;
        if (connUse > 1) withConnUse(end, connUse);
        for (const r of end.results) {
          if (r.sent) {
            pending.delete(r.rcpt);
            // RFC 3461 5.2: a hand-off over SMTP is "relayed"; a server that took
            // NOTIFY sends the success notice itself, so ours is not asked for.
            const rcpt = r.sent.dsnForwarded
              ? { ...r.rcpt, notify: r.rcpt.notify & ~DsnNotify.SUCCESS }
              : r.rcpt;
            await report.sent(rcpt, {
              action: s.lmtp ? "delivered" : "relayed",
              dsn: r.sent.dsn,
              relay: r.sent.relay,
              text: r.sent.text,
              diagType: "smtp",
              diagText: r.sent.reply,
              mtaType: "dns",
              mtaName: r.sent.host,
              connUse: r.sent.connUse,
            });
            continue;
          }
          const f = s.softBounce ? softenedFailure(r.failure!) : r.failure!;
          if (f.hard) {
            pending.delete(r.rcpt);
            await report.bounced(r.rcpt, statusOf(f));
          } else if (final) {
            pending.delete(r.rcpt);
            await report.deferred(r.rcpt, statusOf(f));
          } else lastFailure.set(r.rcpt, f);
        }
        if (end.siteFailure) {
          const f = s.softBounce ? softenedFailure(end.siteFailure) : end.siteFailure;
          siteFailure = f;
          if (f.hard) {
            // A permanent refusal (5xx greeting without skipping, HELO refused) is final.
            for (const r of [...pending]) {
              pending.delete(r);
              await report.bounced(r, statusOf(f));
            }
            break outer;
          }
          if (!final) info(f.text);
        }
        if (s.mxSessionLimit > 0 && sessions >= s.mxSessionLimit) continue outer;
      }
    } finally {
      // A cached session this request did not use is closed (scache gave it up).
      if (preloaded) closeFd(preloaded.fd);
    }
  }
  if (!pending.size) return;
  const site = siteFailure ?? localFailure(
    { host: req.nexthop, addr: "", port: 0, unix: false, pref: 0 },
    "4.4.1",
    "no server available",
    false,
  );
  // A recipient a server refused for now keeps that server's reason.
  for (const r of [...pending]) {
    const own = lastFailure.get(r);
    if (own) {
      pending.delete(r);
      await report.deferred(r, statusOf(own));
    }
  }
  if (!pending.size) return;
  if (site.hard) {
    for (const r of pending) await report.bounced(r, statusOf(site));
  } else await report.deferSite(statusOf(site), pending);
}

/**
 * Whether the request may take (load) and leave (store) cached sessions:
 * not without a cache, nor with SASL (sessions would have to be told apart
 * by login, as Postfix's labels do).
 */
function cacheUse(env: SmtpEnv, flags: number, dest: Destination) {
  if (!env.cache || env.settings.sasl.enable) return { load: false, store: false };
  return cachePolicy(env.cache.settings, flags, dest);
}

/** Postfix's log says `relay=host[addr]:port, conn_use=N` for a reused session (the log only). */
function withConnUse(end: ConversationEnd, uses: number): void {
  const tag = <T extends { relay: string }>(x: T): T =>
    x.relay && x.relay !== "none" ? { ...x, connUse: uses } : x;
  for (const r of end.results) {
    if (r.sent) r.sent = tag(r.sent);
    if (r.failure) r.failure = tag(r.failure);
  }
  if (end.siteFailure) end.siteFailure = tag(end.siteFailure);
}

/** A stream over a session taken from the connection cache. */
function reusedStream(c: CachedSession, s: SmtpSettings, replyFilter?: ReplyFilter): SmtpStream {
  const socket = new net.Socket({ fd: c.fd, readable: true, writable: true });
  const stream = new SmtpStream(socket, s.replyLineLimit);
  stream.filter = replyFilter;
  stream.fd = c.fd;
  return stream;
}

function statusOf(f: Failure): RecipientStatus {
  return {
    dsn: f.dsn,
    relay: f.relay,
    text: f.text,
    diagType: f.diagType,
    diagText: f.diagText,
    mtaType: f.mtaType,
    mtaName: f.mtaName,
    connUse: f.connUse,
  };
}

/** The message bytes for a server, read once per request. */
async function messageFor(
  env: SmtpEnv,
  queueName: string,
  queueId: string,
  dataOffset: number,
  encoding: string,
): Promise<(features: ServerFeatures) => Uint8Array | Failure> {
  let content: ReturnType<typeof readMessage> | undefined;
  let error = "";
  try {
    content = readMessage(queueFilePath(env.layout, queueName, queueId), dataOffset);
    // smtp_header_checks and friends first, then smtp_generic_maps, as Postfix.
    if (env.checks) content = await applySmtpChecks(content, env.checks, queueId);
    content = await env.generic.headers(content);
  } catch (err) {
    error = (err as Error).message;
  }
  const cache = new Map<boolean, Uint8Array>();
  return (features) => {
    if (!content) {
      return localFailure(
        { host: "", addr: "", port: 0, unix: false, pref: 0 },
        "4.3.0",
        `queue file read error: ${error}`,
        false,
      );
    }
    const convert = !features.eightBitMime && !env.settings.disableMimeOutputConversion &&
      isEightBit(encoding);
    let bytes = cache.get(convert);
    if (!bytes) {
      bytes = outgoingMessage(content, env.settings.lineLengthLimit, convert);
      cache.set(convert, bytes);
    }
    return bytes;
  };
}

// Opened once per settings (one per process), on first use.
const keywordTables = new WeakMap<SmtpSettings, Dict[]>();

/**
 * The EHLO keywords to ignore for a server: smtp_discard_ehlo_keyword_address_maps
 * by its address (never its name), else smtp_discard_ehlo_keywords.
 */
async function discardKeywordsFor(
  s: SmtpSettings,
  server: ServerAddress,
  configDir?: string,
): Promise<string[] | undefined> {
  if (!s.discardEhloKeywordAddressMaps.length || server.unix) return undefined;
  let tables = keywordTables.get(s);
  if (!tables) {
    tables = s.discardEhloKeywordAddressMaps.map((spec) => openMap(spec, { cwd: configDir }));
    keywordTables.set(s, tables);
  }
  for (const t of tables) {
    try {
      const v = await t.lookup(server.addr);
      if (v !== undefined) return v.split(/[\s,]+/).filter(Boolean).map((k) => k.toUpperCase());
    } catch (err) {
      warn(`${s.prefix}_discard_ehlo_keyword_address_maps: ${(err as Error).message}`);
      return undefined;
    }
  }
  return undefined;
}

/** smtp_bind_address (IPv4) or smtp_bind_address6 (IPv6) for a server's address family. */
function bindAddressFor(server: ServerAddress, s: SmtpSettings): string | undefined {
  const v6 = server.addr.includes(":");
  return (v6 ? s.bindAddress6 : s.bindAddress) || undefined;
}

/** A connected stream to `server` (from the cache, or new), or why not. */
async function openStream(
  server: ServerAddress,
  s: SmtpSettings,
  policy: TlsPolicy,
  queueDirectory: string,
  replyFilter?: ReplyFilter,
): Promise<SmtpStream | Failure> {
  let socket;
  let fd: number | undefined;
  try {
    if (server.unix) {
      // A relative socket path (unix:private/lmtp) is under the queue directory.
      socket = await connectSocket(
        { path: server.addr.startsWith("/") ? server.addr : `${queueDirectory}/${server.addr}` },
        s.timeouts.connect,
      );
    } else {
      // A descriptor of our own, so that the session can go to the connection cache.
      ({ socket, fd } = await connectTcp(
        server.addr,
        server.port,
        s.timeouts.connect,
        bindAddressFor(server, s),
      ));
    }
  } catch (err) {
    const where = server.unix ? serverName(server) : `${serverName(server)}:${server.port}`;
    return localFailure(server, "4.4.1", `connect to ${where}: ${(err as Error).message}`, false);
  }
  const stream = new SmtpStream(socket, s.replyLineLimit);
  stream.filter = replyFilter;
  stream.fd = fd;
  if (s.tls.wrapperMode && policy.level !== "none") {
    const failure = await wrapperTls(stream, server, s, policy);
    if (failure) {
      stream.close();
      return failure;
    }
  }
  return stream;
}
