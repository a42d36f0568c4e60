// The delivery agent's side of the delivery request protocol (request.ts):
// read one request, let the agent decide each recipient's fate through a
// DeliverySession, which logs Postfix's delivery line, tells the bounce
// daemon (bounce/defer/trace logs), marks finished recipients done in the
// queue file (the R type byte becomes D, so a restarted qmgr never delivers
// them twice), and builds the reply.
//
// Address verification (Postfix's sent/bounce_append/defer_append with trace
// flags): a request flagged MTA_VRFY (a verify(8) probe) or USR_VRFY
// (sendmail -bv) is never delivered. The agent checks `session.verifyOnly`
// before delivering and reports what it would do through the same calls:
// sent() with the would-be text, bounced() or deferred() with the reason.
// The session then tells the verify service (deliverable/undeliverable) or
// the trace log instead of the bounce and defer logs, logs
// `status=deliverable (...)` or `status=undeliverable (...)`, and marks the
// recipient done: probes are never retried from the queue. With RECORD
// (sendmail -v) each real outcome is also written to the trace log.

import type * as net from "node:net";
import { AttrReader, encodeAttrs } from "../ipc/attr.ts";
import type { Config } from "../config/mod.ts";
import { flushAddRecipient } from "../flush_client.ts";
import { bounceClient, type BounceService } from "../bounce_client.ts";
import { actionFor, type DsnStatus, wantsNotice } from "../dsn/status.ts";
import { layoutFromConfig, queueFilePath, type QueueLayout } from "../queue/layout.ts";
import { info, warn } from "../log.ts";
import { deliveryLogLine } from "./log_line.ts";
import { AddrStatus, VerifyStat, verifyUpdateAt } from "../verify_client.ts";
import {
  DeliverFlag,
  type DeliverRecipient,
  type DeliverReply,
  type DeliverRequest,
  DeliverStatus,
  parseRecipient,
  parseRequestHead,
  replyList,
  TRACE_ONLY_MASK,
} from "./request.ts";

/** What a session needs from the agent's environment. */
export interface AgentEnv {
  layout: QueueLayout;
  bounce: BounceService;
  /** delay_logging_resolution_limit. */
  resolution: number;
  /** Seconds since the epoch (tests replace it). */
  now?: () => number;
  /**
   * Records a probe's result with the verify service (verify_clnt_update);
   * false when the service failed. Default: private/verify under the queue.
   */
  verify?: (address: string, status: number, why: string) => Promise<boolean>;
  /** address_verify_negative_cache: whether undeliverable probe results are recorded (default yes). */
  verifyNegativeCache?: boolean;
  /**
   * Tells the fast flush service about a deferred recipient's domain, as
   * Postfix's defer logging does (flush_add); never fatal.
   */
  flush?: (address: string, queueId: string) => Promise<unknown>;
}

/** The outcome names of the verify log line and trace entries, by outcome. */
const verifyActions = {
  sent: { status: AddrStatus.OK, action: "deliverable" },
  bounced: { status: AddrStatus.BOUNCE, action: "undeliverable" },
  deferred: { status: AddrStatus.DEFER, action: "undeliverable" },
} as const;

/** How one recipient's delivery ended, as the agent reports it. */
export interface RecipientStatus {
  /** X.Y.Z. */
  dsn: string;
  /** relay= (`none`, `host[addr]:port`, `local`). */
  relay: string;
  /** The text in parentheses after status=. */
  text: string;
  /** Diagnostic-Code type and text for DSNs (default X-Postfix and the text). */
  diagType?: string;
  diagText?: string;
  mtaType?: string;
  mtaName?: string;
  /**
   * The DSN action of a success: "relayed" for a hand-off to a system that
   * will not report delivery (pipe without flag X), else "delivered".
   */
  action?: "delivered" | "relayed";
  /** Uses of the connection that carried it (smtp's connection cache): conn_use= when above 1. */
  connUse?: number;
}

const wallClock = () => Date.now() / 1000;

/** One delivery request being handled. */
export class DeliverySession {
  readonly agentStart: number;
  /** When the agent's connection was set up; agents with a connection update it. */
  connSetup: number;
  private results = new Map<number, "sent" | "bounced" | "deferred">();
  private traced = false;
  private hopStatus = "";
  private hopReason = "";
  private siteDeferred = false;
  private file: Deno.FsFile | undefined;

  constructor(readonly request: DeliverRequest, private readonly env: AgentEnv) {
    this.agentStart = this.now();
    this.connSetup = this.agentStart;
  }

  private now(): number {
    return (this.env.now ?? wallClock)();
  }

  private log(rcpt: DeliverRecipient, status: string, s: RecipientStatus): void {
    const r = this.request;
    info(deliveryLogLine(
      {
        queueId: r.queueId,
        recipient: rcpt.address,
        origRecipient: rcpt.origRcpt,
        // A reused connection shows in the log line only (not in DSNs or traces).
        relay: s.connUse && s.connUse > 1 ? `${s.relay}, conn_use=${s.connUse}` : s.relay,
        times: {
          arrival: r.arrival,
          active: r.active,
          agentStart: this.agentStart,
          connSetup: this.connSetup,
        },
        dsn: s.dsn,
        status,
        text: s.text,
      },
      this.now(),
      this.env.resolution,
    ));
  }

  private dsnOf(kind: "sent" | "bounced" | "deferred", s: RecipientStatus): DsnStatus {
    return {
      status: s.dsn,
      action: actionFor(kind),
      reason: s.text,
      diagType: s.diagType ?? "",
      diagText: s.diagText ?? "",
      mtaType: s.mtaType ?? "",
      mtaName: s.mtaName ?? "",
    };
  }

  /**
   * Whether this request only verifies (a verify probe or sendmail -bv):
   * the agent must not deliver, only say what it would do (sent() with the
   * would-be text, bounced() or deferred() with the reason).
   */
  get verifyOnly(): boolean {
    return (this.request.flags & TRACE_ONLY_MASK) !== 0;
  }

  /** Whether every outcome is also to be recorded in the trace log (sendmail -v). */
  private get recording(): boolean {
    return (this.request.flags & DeliverFlag.RECORD) !== 0;
  }

  /**
   * Appends to the trace log, as Postfix's trace_append(): the reason says
   * which agent delivered (`delivery via RELAY: `) unless there was none.
   */
  private async traceAppend(
    rcpt: DeliverRecipient,
    s: RecipientStatus,
    action: string,
  ): Promise<boolean> {
    const reason = s.relay && s.relay !== "none" ? `delivery via ${s.relay}: ${s.text}` : s.text;
    const dsn: DsnStatus = {
      status: s.dsn,
      action,
      reason,
      diagType: s.diagType ?? "",
      diagText: s.diagText ?? "",
      mtaType: s.mtaType ?? "",
      mtaName: s.mtaName ?? "",
    };
    const ok = await this.env.bounce.append("trace", this.request.queueId, rcpt, dsn);
    if (ok) this.traced = true;
    return ok;
  }

  /** The recipient was delivered: log, trace when asked, mark done. */
  async sent(rcpt: DeliverRecipient, s: RecipientStatus): Promise<void> {
    if (this.verifyOnly) return await this.verified(rcpt, s, "sent");
    if (wantsNotice(rcpt.notify, "success") || this.recording) {
      await this.traceAppend(rcpt, s, s.action ?? actionFor("sent"));
    }
    this.log(rcpt, "sent", s);
    this.markDone(rcpt);
    this.results.set(rcpt.offset, "sent");
  }

  /** The recipient cannot be delivered: bounce log, mark done (defer when bounce fails). */
  async bounced(rcpt: DeliverRecipient, s: RecipientStatus): Promise<void> {
    if (this.verifyOnly) return await this.verified(rcpt, s, "bounced");
    if (this.recording) await this.traceAppend(rcpt, s, actionFor("bounced"));
    if (
      !await this.env.bounce.append("bounce", this.request.queueId, rcpt, this.dsnOf("bounced", s))
    ) {
      await this.deferred(rcpt, {
        ...s,
        dsn: "4.3.0",
        text: "bounce or trace service failure",
        diagType: "",
        diagText: "",
      });
      return;
    }
    this.log(rcpt, "bounced", s);
    this.markDone(rcpt);
    this.results.set(rcpt.offset, "bounced");
  }

  /** The recipient is to be tried again later: defer log. */
  async deferred(rcpt: DeliverRecipient, s: RecipientStatus): Promise<void> {
    if (this.verifyOnly) return await this.verified(rcpt, s, "deferred");
    if (this.recording) await this.traceAppend(rcpt, s, actionFor("deferred"));
    await this.env.bounce.append("defer", this.request.queueId, rcpt, this.dsnOf("deferred", s));
    await this.env.flush?.(rcpt.address, this.request.queueId);
    this.log(rcpt, "deferred", s);
    this.results.set(rcpt.offset, "deferred");
  }

  /**
   * What a verification request would have done: to the verify service
   * (MTA_VRFY, as Postfix's verify_append()) or the trace log (USR_VRFY),
   * logged as deliverable or undeliverable; the recipient is done. When
   * the service fails the recipient stays deferred in the queue.
   */
  private async verified(
    rcpt: DeliverRecipient,
    s: RecipientStatus,
    kind: "sent" | "bounced" | "deferred",
  ): Promise<void> {
    const v = verifyActions[kind];
    let action: string = v.action;
    let ok: boolean;
    let service: string;
    if (this.request.flags & DeliverFlag.MTA_VRFY) {
      service = "verify";
      if (this.env.verifyNegativeCache === false && v.status !== AddrStatus.OK) {
        action = "undeliverable-but-not-cached";
        ok = true;
      } else {
        ok = await this.verifyUpdates(rcpt, v.status, s.text);
      }
    } else {
      service = "trace";
      ok = await this.traceAppend(rcpt, s, action);
    }
    if (!ok) {
      warn(`${this.request.queueId}: ${service} service failure`);
      this.log(rcpt, "deferred", { ...s, dsn: "4.3.0", text: `${service} service failure` });
      this.results.set(rcpt.offset, "deferred");
      return;
    }
    this.log(rcpt, action, s);
    this.markDone(rcpt);
    this.results.set(rcpt.offset, "sent");
  }

  /** The original recipient's status, then the address's when it differs (two updates for one probe, as Postfix). */
  private async verifyUpdates(
    rcpt: DeliverRecipient,
    status: number,
    why: string,
  ): Promise<boolean> {
    const update = this.env.verify ??
      ((address: string, st: number, text: string) =>
        verifyUpdateAt(`${this.env.layout.queueDirectory}/private/verify`, address, st, text)
          .then((r) => r === VerifyStat.OK));
    if (rcpt.origRcpt && !await update(rcpt.origRcpt, status, why)) return false;
    if (rcpt.address.toLowerCase() !== rcpt.origRcpt.toLowerCase()) {
      return await update(rcpt.address, status, why);
    }
    return true;
  }

  /** The destination failed as a whole: every recipient deferred, negative feedback for qmgr. */
  async deferSite(s: RecipientStatus): Promise<void> {
    this.siteDeferred = true;
    this.hopStatus = s.dsn;
    this.hopReason = s.text;
    for (const rcpt of this.request.recipients) {
      if (!this.results.has(rcpt.offset)) await this.deferred(rcpt, s);
    }
  }

  /**
   * Marks a finished recipient in the queue file: the R type byte becomes
   * D, written at once (Postfix's deliver_completed()).
   */
  private markDone(rcpt: DeliverRecipient): void {
    const r = this.request;
    try {
      this.file ??= Deno.openSync(queueFilePath(this.env.layout, r.queueName, r.queueId), {
        read: true,
        write: true,
      });
      const type = new Uint8Array(1);
      this.file.seekSync(rcpt.offset, Deno.SeekMode.Start);
      this.file.readSync(type);
      if (type[0] !== 0x52) { // "R"
        warn(`${r.queueId}: no recipient record at offset ${rcpt.offset}`);
        return;
      }
      this.file.seekSync(rcpt.offset, Deno.SeekMode.Start);
      // Written through at once, not fsynced: a crashed process loses
      // nothing (the page cache holds it), as with Postfix's flush.
      this.file.writeSync(new Uint8Array([0x44])); // "D"
    } catch (err) {
      warn(`${r.queueId}: update queue file: ${(err as Error).message}`);
    }
  }

  /** The reply to send; recipients the agent never decided on count as deferred. */
  reply(): DeliverReply {
    for (const rcpt of this.request.recipients) {
      if (!this.results.has(rcpt.offset)) this.results.set(rcpt.offset, "deferred");
    }
    return {
      status: this.siteDeferred ? DeliverStatus.DEFER : DeliverStatus.OK,
      hopStatus: this.hopStatus,
      hopReason: this.hopReason,
      results: this.results,
      traced: this.traced,
    };
  }

  /** Releases the queue file. */
  close(): void {
    try {
      this.file?.close();
    } catch {
      // Already closed.
    }
    this.file = undefined;
  }
}

/** Reads one complete request from a connection; null when the client went away first. */
export function readRequest(conn: net.Socket): Promise<DeliverRequest | null> {
  return new Promise((resolve, reject) => {
    const reader = new AttrReader();
    let head: (DeliverRequest & { rcptCount: number }) | undefined;
    const done = (value: DeliverRequest | null, err?: Error) => {
      conn.off("data", onData);
      conn.off("end", onEnd);
      conn.off("error", onEnd);
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Uint8Array) => {
      try {
        for (const list of reader.push(chunk)) {
          if (!head) head = parseRequestHead(list);
          else head.recipients.push(parseRecipient(list));
          if (head.recipients.length === head.rcptCount) {
            const { rcptCount: _, ...req } = head;
            return done(req);
          }
        }
      } catch (err) {
        done(null, err as Error);
      }
    };
    const onEnd = () => done(null);
    conn.on("data", onData);
    conn.on("end", onEnd);
    conn.on("error", onEnd);
  });
}

/** Writes the reply list to the connection. */
export function writeReply(conn: net.Socket, reply: DeliverReply): Promise<void> {
  return new Promise((resolve) => conn.write(encodeAttrs(replyList(reply)), () => resolve()));
}

/** The agent's decision procedure for one request. */
export type Deliverer = (session: DeliverySession) => Promise<void>;

/** Serves one connection: request in, session through `deliver`, reply out. */
export async function handleDeliveryConnection(
  conn: net.Socket,
  env: AgentEnv,
  deliver: Deliverer,
): Promise<void> {
  let req: DeliverRequest | null;
  try {
    req = await readRequest(conn);
  } catch (err) {
    warn(`bad delivery request: ${(err as Error).message}`);
    return;
  }
  if (!req) return;
  const session = new DeliverySession(req, env);
  try {
    await deliver(session);
  } finally {
    session.close();
  }
  await writeReply(conn, session.reply());
}

/**
 * Requests one light agent process (error, discard) serves at once: above
 * any process limit qmgr keeps per transport, so the process never reports
 * itself busy while qmgr still sends.
 */
export const agentConcurrency = 10_000;

/** The environment of an agent started by the master, from its configuration. */
export function agentEnvFromConfig(
  config: {
    get(name: string): string;
    list(name: string): string[];
    int(name: string): number;
    bool?(name: string): boolean;
  },
): AgentEnv {
  const queue = config.get("queue_directory");
  const verifyPath = `${queue}/private/${config.get("address_verify_service_name") || "verify"}`;
  return {
    // Only a whole Config reaches the flush service (tests pass less).
    flush: "configDir" in config
      ? (address, id) => flushAddRecipient(config as Config, address, id)
      : undefined,
    verify: async (address, status, why) =>
      await verifyUpdateAt(verifyPath, address, status, why) === VerifyStat.OK,
    verifyNegativeCache: config.bool?.("address_verify_negative_cache") ?? true,
    layout: layoutFromConfig(config),
    bounce: bounceClient(queue, {
      bounce: config.get("bounce_service_name") || "bounce",
      defer: config.get("defer_service_name") || "defer",
      trace: config.get("trace_service_name") || "trace",
    }),
    resolution: config.int("delay_logging_resolution_limit"),
  };
}
