// The queue manager's core, as Postfix's qmgr(8) and SCHEDULER_README:
// messages come from incoming (and from deferred when their retry time is
// due) into active within qmgr_message_active_limit; each recipient is
// resolved to a transport and next hop (cached per message), grouped into
// per-transport, per-destination queues, and handed to delivery agents in
// requests of at most TRANSPORT_destination_recipient_limit recipients,
// within each destination's concurrency window (slow start, feedback,
// dead-destination detection in feedback.ts). When every recipient of a
// message has an outcome the message is removed, or moved to deferred with
// its next retry time as mtime, or returned to the sender once expired.
//
// Everything the core touches outside the queue tree is a dependency
// (resolver, delivery, bounce service, clock), so tests drive it in-process.

import { info, warn } from "../../lib/log.ts";
import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { exists, listQueue, moveFile, removeQuiet } from "./queue_files.ts";
import { QueueFileRefused, readQueueFile, saveCorrupt } from "../../lib/queue/file.ts";
import { RecordError } from "../../lib/queue/record.ts";
import type { BounceMessage, BounceService } from "../../lib/bounce_client.ts";
import type { DeliverReply, DeliverRequest } from "../../lib/deliver/request.ts";
import { DeliverFlag, DeliverStatus, TRACE_ONLY_MASK } from "../../lib/deliver/request.ts";
import { AddrStatus } from "../../lib/verify_client.ts";
import { deliveryLogLine } from "../../lib/deliver/log_line.ts";
import { DeliverySession } from "../../lib/deliver/agent.ts";
import { ConcurrencyWindow } from "./feedback.ts";
import {
  clearWarnRecord,
  killTraceRecord,
  parseQueuedMessage,
  type QueuedMessage,
  type QueuedRecipient,
} from "./message.ts";
import type { QmgrSettings, TransportSettings } from "./settings.ts";
import { verpSender } from "../../lib/verp.ts";

/** What resolving one recipient gives (lib/rewrite_client.ts's ResolveResult). */
export interface Resolved {
  transport: string;
  nexthop: string;
  recipient: string;
  flags: number;
}

/** RESOLVE_FLAG_FAIL: the resolver could not answer; try again later. */
const RESOLVE_FLAG_FAIL = 1 << 3;
/** RESOLVE_FLAG_ERROR: the address is not acceptable (bad syntax). */
const RESOLVE_FLAG_ERROR = 1 << 2;
/** RESOLVE_CLASS_LOCAL: the domain is delivered here by the local transport. */
const RESOLVE_CLASS_LOCAL = 1 << 8;

/** A delivery agent could not be reached at all (the transport is unavailable). */
export class TransportUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransportUnavailable";
  }
}

/** What the core needs from the world. */
export interface QmgrDeps {
  layout: QueueLayout;
  settings: QmgrSettings;
  resolve(sender: string, address: string): Promise<Resolved>;
  /** Resolves for a verify probe (address_verify_* routing); resolve() when absent. */
  resolveVerify?(sender: string, address: string): Promise<Resolved>;
  /**
   * Sends the non-delivery notices of a VERP message from its bounce or
   * defer log, one per recipient to that recipient's VERP sender; false
   * when they could not be sent. Without it the notice goes out unVERPed.
   */
  bounceVerp?(log: "bounce" | "defer", msg: BounceMessage, delims: string): Promise<boolean>;
  /** Sends one request to the transport's agent; rejects with TransportUnavailable when it cannot connect. */
  deliver(transport: string, request: DeliverRequest): Promise<DeliverReply>;
  bounce: BounceService;
  /** Rewrites an address to canonical form (a redirect target); used as given when absent. */
  canonicalize?(address: string): Promise<string>;
  /** Records a probe's result with the verify service; false when it failed. */
  verify?(address: string, status: number, why: string): Promise<boolean>;
  /** address_verify_negative_cache (default yes). */
  verifyNegativeCache?: boolean;
  /** Tells the fast flush service about a deferred recipient's domain (flush_add). */
  flush?(address: string, queueId: string): Promise<unknown>;
  /** Seconds since the epoch. */
  now?: () => number;
}

/** A message in the active queue. */
interface ActiveMessage {
  q: QueuedMessage;
  path: string;
  activeTime: number;
  /** Recipients handed to queues and not yet answered for. */
  pending: number;
  /** Still reading/resolving: not done even when pending is 0. */
  loading: boolean;
  deferred: boolean;
  bounced: boolean;
  traced: boolean;
  /** sendmail -q / postqueue -f: defer_transports do not hold it back. */
  force: boolean;
  /** A verify probe (counted against address_verify_pending_request_limit). */
  probe: boolean;
  /** A probe beyond that limit: tempfailed. */
  overLimit: boolean;
}

/** Recipients of one message for one destination. */
interface Entry {
  msg: ActiveMessage;
  job: Job;
  queue: DestQueue;
  recipients: QueuedRecipient[];
  /** Every recipient handed out (or deferred): skipped where still listed. */
  done: boolean;
}

/**
 * One message's work on one transport (nqmgr's job): its entries by
 * destination, how many deliveries remain, and the delivery slots it has
 * accumulated for preemption (SCHEDULER_README, "preemptive scheduling").
 */
interface Job {
  msg: ActiveMessage;
  entries: Entry[];
  /** Deliveries (requests) still to hand out, and at the start. */
  remaining: number;
  total: number;
  /** Deliveries handed out, and slots given to jobs that preempted this one. */
  selected: number;
  slotsUsed: number;
}

/** One destination of one transport. */
interface DestQueue {
  name: string;
  nexthop: string;
  transport: Transport;
  window: ConcurrencyWindow;
  busy: number;
  todo: Entry[];
  /** Dead (throttled) until this time, with this status and reason; 0: alive. */
  deadUntil: number;
  deadDsn: string;
  deadReason: string;
  /** Connection cache request flags (CONN_LOAD, CONN_STORE) for this destination. */
  connFlags: number;
  /** When a delivery to this destination last finished (seconds). */
  lastDone: number;
}

const { CONN_LOAD, CONN_STORE } = DeliverFlag;

/** One transport. */
interface Transport {
  name: string;
  s: TransportSettings;
  busy: number;
  queues: Map<string, DestQueue>;
  /** Jobs in scheduling order; a preempting job is moved before the current one. */
  jobs: Job[];
  /** The job whose entry was selected last. */
  current: Job | undefined;
  /** Jobs in the list with nothing left (removed in batches). */
  finished: number;
  deadUntil: number;
  deadReason: string;
}

const wallClock = () => Date.now() / 1000;

/** The queue manager. */
export class Qmgr {
  private transports = new Map<string, Transport>();
  private active = new Map<string, ActiveMessage>();
  private inFlight = 0;
  /** Recipients of active messages still held in memory (qmgr_message_recipient_limit). */
  private rcptInMemory = 0;
  /** Verify probes in the active queue. */
  private probes = 0;
  private scanning: Promise<void> | undefined;
  private rescan: { incoming: boolean; deferred: boolean; ignoreTime: boolean } | undefined;
  /** A scan stopped at the active limit: feed again when a message leaves. */
  private starved = false;
  private pumpQueued = false;
  private idleWaiters: (() => void)[] = [];
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;
  /** Recipients delivered per request, for tests and benchmarks. */
  readonly stats = { requests: 0, recipients: 0 };

  constructor(private readonly deps: QmgrDeps) {}

  private now(): number {
    return (this.deps.now ?? wallClock)();
  }

  /** Messages in the active queue (in memory). */
  get activeCount(): number {
    return this.active.size;
  }

  /**
   * Starts: files left in active by a previous qmgr go back to incoming
   * (their done recipients stay D, so nothing is delivered twice), then
   * incoming and deferred are scanned.
   */
  async start(): Promise<void> {
    for (const { id, path } of listQueue(this.deps.layout, "active")) {
      const to = queueFilePath(this.deps.layout, "incoming", id);
      try {
        moveFile(path, to);
      } catch (err) {
        warn(`move ${path} to incoming: ${(err as Error).message}`);
      }
    }
    await this.scan({ incoming: true, deferred: true, ignoreTime: false });
  }

  /** Stops timers; deliveries in flight finish on their own. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Handles trigger bytes from public/qmgr: W and I incoming, D deferred, A all, F dead sites. */
  async trigger(data: Uint8Array | string): Promise<void> {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const want = { incoming: false, deferred: false, ignoreTime: false };
    for (const ch of text) {
      if (ch === "I" || ch === "W") want.incoming = true;
      else if (ch === "D") want.deferred = true;
      else if (ch === "A") want.incoming = want.deferred = want.ignoreTime = true;
      else if (ch === "F") this.reviveAll();
    }
    if (want.incoming || want.deferred) await this.scan(want);
  }

  /** Resolves when nothing is active, in flight or being scanned. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.active.size === 0 && this.inFlight === 0 && !this.scanning;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Scans queues; a scan asked for during a scan runs after it. */
  async scan(want: { incoming: boolean; deferred: boolean; ignoreTime: boolean }): Promise<void> {
    if (this.scanning) {
      const r = this.rescan ??= { incoming: false, deferred: false, ignoreTime: false };
      r.incoming ||= want.incoming;
      r.deferred ||= want.deferred;
      r.ignoreTime ||= want.ignoreTime;
      return await this.scanning;
    }
    // The loop clears this.scanning in the same step as its last look at
    // rescan (no await between): a trigger that comes after that look starts
    // a scan of its own instead of leaving a request nobody runs.
    let finished = false;
    // Declared apart: the finally below may run before the assignment completes.
    // deno-lint-ignore prefer-const
    let scanning: Promise<void> | undefined;
    scanning = (async () => {
      let next: typeof want | undefined = want;
      try {
        while (next) {
          // Incoming first: new mail is not held up by a large deferred queue.
          if (next.incoming) await this.feed("incoming", false, false);
          if (next.deferred) await this.feed("deferred", next.ignoreTime, next.ignoreTime);
          next = this.rescan;
          this.rescan = undefined;
        }
      } finally {
        finished = true;
        if (this.scanning === scanning) this.scanning = undefined;
      }
    })();
    if (!finished) this.scanning = scanning;
    try {
      await scanning;
    } finally {
      this.checkIdle();
    }
  }

  /** Moves due files from one queue into active, up to the active limit. */
  private async feed(queue: string, ignoreTime: boolean, force: boolean): Promise<void> {
    const now = this.now();
    const { activeLimit, recipientLimit } = this.deps.settings;
    // Messages are read and resolved several at a time: resolver round trips overlap.
    const loading = new Set<Promise<void>>();
    for (const { id, path } of listQueue(this.deps.layout, queue)) {
      if (this.stopped) break;
      if (
        this.active.size >= activeLimit ||
        (this.active.size > 0 && this.rcptInMemory >= recipientLimit)
      ) {
        this.starved = true;
        break;
      }
      if (this.active.has(id)) continue;
      let st: Deno.FileInfo;
      try {
        st = Deno.statSync(path);
      } catch {
        continue;
      }
      // Without the execute bit the file is still being written.
      if (((st.mode ?? 0) & 0o100) === 0) continue;
      if (queue === "deferred" && !ignoreTime && (st.mtime?.getTime() ?? 0) / 1000 > now) continue;
      const to = queueFilePath(this.deps.layout, "active", id);
      try {
        moveFile(path, to);
      } catch (err) {
        warn(`${id}: move to active: ${(err as Error).message}`);
        continue;
      }
      const p = this.activate(id, to, force).finally(() => loading.delete(p));
      loading.add(p);
      if (loading.size >= 32) await Promise.race(loading);
    }
    await Promise.all(loading);
  }

  /** Reads a message now in active and schedules its recipients. */
  private async activate(id: string, path: string, force: boolean): Promise<void> {
    let q: QueuedMessage;
    try {
      q = parseQueuedMessage(id, readQueueFile(path));
    } catch (err) {
      if (err instanceof QueueFileRefused && err.reason === "corrupt") {
        warn(err.message);
        saveCorrupt(this.deps.layout, "active", id);
        return;
      }
      if (err instanceof RecordError) {
        warn(`${id}: ${err.message}`);
        saveCorrupt(this.deps.layout, "active", id);
        return;
      }
      warn(`${id}: ${(err as Error).message}`);
      return;
    }
    // A new attempt starts a new defer log (Postfix removes it on activation).
    removeQuiet(queueFilePath(this.deps.layout, "defer", id));
    const msg: ActiveMessage = {
      q,
      path,
      activeTime: this.now(),
      pending: 0,
      loading: true,
      deferred: false,
      bounced: false,
      traced: false,
      force,
      probe: (q.traceFlags & DeliverFlag.MTA_VRFY) !== 0,
      overLimit: false,
    };
    if (msg.probe) {
      const limit = this.deps.settings.verifyPendingLimit;
      msg.overLimit = ++this.probes > limit && limit > 0;
    }
    if (q.verpDelims && q.sender === "") {
      warn(`${id}: ignoring VERP request for null sender`);
      q.verpDelims = "";
    }
    this.active.set(id, msg);
    this.rcptInMemory += q.recipients.length;
    info(`${id}: from=<${q.sender}>, size=${q.size}, nrcpt=${q.rcptCount} (queue active)`);
    await this.resolveAll(msg);
    msg.loading = false;
    this.schedulePump();
    if (msg.pending === 0) await this.done(msg);
  }

  /** Resolves every recipient (once per distinct address) and queues it. */
  private async resolveAll(msg: ActiveMessage): Promise<void> {
    const cache = new Map<string, Promise<Resolved | null>>();
    // Probes from the verify service take the address_verify_* routes.
    const probe = (msg.q.traceFlags & DeliverFlag.MTA_VRFY) !== 0 && this.deps.resolveVerify;
    const resolve = probe
      ? this.deps.resolveVerify!.bind(this.deps)
      : this.deps.resolve.bind(this.deps);
    const resolveOne = (address: string) => {
      let p = cache.get(address);
      if (!p) {
        p = resolve(msg.q.sender, address).catch((err) => {
          warn(`${msg.q.queueId}: resolve ${address}: ${(err as Error).message}`);
          return null;
        });
        cache.set(address, p);
      }
      return p;
    };
    let recipients = msg.q.recipients;
    if (msg.q.redirect && recipients.length) {
      // A redirect overrides all else: the first recipient goes to the
      // (canonical) redirect address, the others are dropped, as in Postfix.
      const redirect = msg.q.redirect;
      const to = await (this.deps.canonicalize?.(redirect) ?? Promise.resolve(redirect)).catch(
        (err) => {
          warn(`${msg.q.queueId}: rewrite ${redirect}: ${(err as Error).message}`);
          return redirect;
        },
      );
      recipients = [{ ...recipients[0], address: to }];
    }
    // A content filter takes the mail instead of the resolver's choice,
    // except for probes and sendmail -bv, which are never filtered.
    const filter = msg.q.filter && !(msg.q.traceFlags & TRACE_ONLY_MASK) && !msg.q.redirect
      ? msg.q.filter
      : "";
    const results = await Promise.all(
      recipients.map((r) => filter ? this.filterRoute(filter, r.address) : resolveOne(r.address)),
    );
    const groups = new Map<DestQueue, QueuedRecipient[]>();
    for (let i = 0; i < results.length; i++) {
      let rcpt = recipients[i];
      let res = results[i];
      // Delivery goes to the address as the resolver rewrote it.
      if (res?.recipient && res.recipient !== rcpt.address) {
        rcpt = { ...rcpt, address: res.recipient };
      }
      // As Postfix's qmgr does, recipients it cannot send on now go to the
      // retry service with the reason as next hop (that agent logs them).
      if (msg.overLimit) {
        // Probes beyond address_verify_pending_request_limit are tempfailed.
        res = redirect(res, "4.3.2 Too many address verification requests");
      } else if (!res || (res.flags & RESOLVE_FLAG_FAIL)) {
        res = redirect(res, "4.3.0 address resolver failure");
      } else if (res.flags & RESOLVE_FLAG_ERROR) {
        // The error service bounces it (or, for a probe, reports it undeliverable).
        res = redirect(res, "5.1.3 bad address syntax", "error");
      } else if (rcpt.address === "") {
        res = redirect(res, "5.1.3 null recipient address", "error");
      } else if (this.deps.settings.deferTransports.has(res.transport) && !msg.force) {
        res = redirect(res, "4.3.2 deferred transport");
      }
      if (this.isDoubleBounce(res)) {
        await this.discardDoubleBounce(msg, rcpt);
        continue;
      }
      const transport = this.transport(res.transport);
      if (transport.deadUntil > this.now()) {
        await this.deferByQmgr(msg, rcpt, "4.3.0", transport.deadReason);
        continue;
      }
      const queue = this.queue(transport, res);
      if (queue.deadUntil > this.now()) {
        await this.deferByQmgr(
          msg,
          rcpt,
          queue.deadDsn,
          `delivery temporarily suspended: ${queue.deadReason}`,
        );
        continue;
      }
      let list = groups.get(queue);
      if (!list) groups.set(queue, list = []);
      list.push(rcpt);
    }
    const jobs = new Map<Transport, Job>();
    for (const [queue, recipients] of groups) {
      msg.pending += recipients.length;
      const t = queue.transport;
      let job = jobs.get(t);
      if (!job) {
        job = { msg, entries: [], remaining: 0, total: 0, selected: 0, slotsUsed: 0 };
        jobs.set(t, job);
        t.jobs.push(job);
      }
      const entry: Entry = { msg, job, queue, recipients, done: false };
      const n = chunks(recipients.length, rcptLimit(msg, t));
      job.entries.push(entry);
      job.remaining += n;
      job.total += n;
      queue.todo.push(entry);
    }
  }

  /**
   * The route to a content filter (transport:nexthop); without a next hop,
   * default_filter_nexthop, else the recipient's domain, else myhostname.
   */
  private filterRoute(filter: string, address: string): Promise<Resolved> {
    const colon = filter.indexOf(":");
    const transport = colon < 0 ? filter : filter.slice(0, colon);
    let nexthop = colon < 0 ? "" : filter.slice(colon + 1);
    if (!nexthop) nexthop = this.deps.settings.defaultFilterNexthop;
    if (!nexthop) {
      const at = address.lastIndexOf("@");
      nexthop = at >= 0 && at < address.length - 1
        ? address.slice(at + 1)
        : this.deps.settings.myhostname;
    }
    return Promise.resolve({ transport, nexthop, recipient: address, flags: 0 });
  }

  /** Whether a recipient is the local double_bounce_sender address. */
  private isDoubleBounce(res: Resolved): boolean {
    if (!(res.flags & RESOLVE_CLASS_LOCAL)) return false;
    const at = res.recipient.lastIndexOf("@");
    const local = at < 0 ? res.recipient : res.recipient.slice(0, at);
    return local.toLowerCase() === this.deps.settings.doubleBounceSender.toLowerCase();
  }

  /**
   * Mail to the local double-bounce address is discarded here, as Postfix's
   * qmgr does, so a system runs without a local agent for it: logged as
   * sent (through a delivery session, so probes and traces see it too).
   */
  private async discardDoubleBounce(msg: ActiveMessage, rcpt: QueuedRecipient): Promise<void> {
    const now = this.now();
    const session = new DeliverySession(this.requestFor(msg, "none", [rcpt]), {
      layout: this.deps.layout,
      bounce: this.deps.bounce,
      resolution: this.deps.settings.resolution,
      verify: this.deps.verify?.bind(this.deps),
      verifyNegativeCache: this.deps.verifyNegativeCache,
      now: () => now,
    });
    try {
      await session.sent(rcpt, {
        dsn: "2.0.0",
        relay: "none",
        text: "undeliverable postmaster notification discarded",
      });
      const reply = session.reply();
      if (reply.results.get(rcpt.offset) === "deferred") msg.deferred = true;
      if (reply.traced) msg.traced = true;
    } finally {
      session.close();
    }
  }

  private transport(name: string): Transport {
    let t = this.transports.get(name);
    if (!t) {
      t = {
        name,
        s: this.deps.settings.transport(name),
        busy: 0,
        queues: new Map(),
        jobs: [],
        current: undefined,
        finished: 0,
        deadUntil: 0,
        deadReason: "",
      };
      this.transports.set(name, t);
    }
    return t;
  }

  /**
   * The destination queue: the next hop, lower-cased; with a recipient
   * limit of 1 (local delivery) each recipient is its own destination, so
   * concurrency is per user, as in Postfix.
   */
  private queue(t: Transport, res: Resolved): DestQueue {
    const nexthop = res.nexthop;
    const name = t.s.rcptLimit === 1
      ? `${res.recipient.slice(0, res.recipient.lastIndexOf("@") >>> 0)}@${nexthop}`.toLowerCase()
      : nexthop.toLowerCase();
    let q = t.queues.get(name);
    if (!q) {
      q = {
        name,
        nexthop,
        transport: t,
        window: new ConcurrencyWindow(t.s.window),
        busy: 0,
        todo: [],
        deadUntil: 0,
        connFlags: 0,
        lastDone: 0,
        deadDsn: "",
        deadReason: "",
      };
      t.queues.set(name, q);
    }
    return q;
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Starts every delivery the windows and process limits allow. */
  private pump(): void {
    const now = this.now();
    for (const t of this.transports.values()) {
      if (t.deadUntil > now) continue;
      while (t.busy < t.s.processLimit) {
        this.preempt(t, now);
        const picked = this.pick(t, now);
        if (!picked) break;
        this.dispatch(picked.queue, picked);
      }
      if (t.finished > 64 && t.finished * 2 > t.jobs.length) {
        t.jobs = t.jobs.filter((j) => j.remaining > 0);
        t.finished = 0;
      }
      // Drop empty, idle, healthy queues so the map does not grow without bound.
      for (const q of t.queues.values()) {
        while (q.todo.length && q.todo[0].done) q.todo.shift();
        if (q.todo.length === 0 && q.busy === 0 && q.deadUntil === 0) t.queues.delete(q.name);
      }
    }
  }

  /** Whether a destination can take another delivery now. */
  private open(q: DestQueue, now: number): boolean {
    return q.deadUntil <= now && q.busy < Math.max(1, q.window.concurrency);
  }

  /**
   * The next delivery of a transport: the first job in the list with an
   * entry whose destination has room; a job blocked by its destinations'
   * windows lets the jobs behind it go.
   */
  private pick(t: Transport, now: number): Entry | null {
    for (const job of t.jobs) {
      if (job.remaining === 0) continue;
      for (const entry of job.entries) {
        if (!this.open(entry.queue, now)) continue;
        t.current = job;
        job.selected++;
        return this.take(entry, rcptLimit(job.msg, t));
      }
    }
    return null;
  }

  /** One request's recipients from an entry: at most the recipient limit. */
  private take(entry: Entry, limit: number): Entry {
    const job = entry.job;
    job.remaining--;
    if (job.remaining === 0) entry.queue.transport.finished++;
    if (limit <= 0 || entry.recipients.length <= limit) {
      entry.done = true;
      job.entries.splice(job.entries.indexOf(entry), 1);
      const todo = entry.queue.todo;
      while (todo.length && todo[0].done) todo.shift();
      return entry;
    }
    return { ...entry, recipients: entry.recipients.splice(0, limit) };
  }

  /**
   * nqmgr's preemption: the current job accumulates one delivery slot per
   * transport_delivery_slot_cost deliveries; another job that needs no more
   * slots than the current one can still accumulate, and whose need
   * (discounted by transport_delivery_slot_discount percent) is covered by
   * the slots accumulated plus transport_delivery_slot_loan, goes first.
   * Among candidates the one waiting longest per delivery wins.
   */
  private preempt(t: Transport, now: number): void {
    const { slotCost, slotLoan, slotDiscount, minimumSlots } = t.s;
    const cur = t.current;
    if (slotCost <= 0 || !cur || cur.remaining === 0) return;
    const cost = Math.max(2, slotCost);
    const maxSlots = Math.floor(cur.total / cost);
    if (maxSlots < minimumSlots) return;
    const canAccumulate = maxSlots - cur.slotsUsed;
    let best: Job | undefined;
    let bestScore = -1;
    for (const j of t.jobs) {
      if (j === cur || j.remaining === 0 || j.remaining > canAccumulate) continue;
      if (!j.entries.some((e) => this.open(e.queue, now))) continue;
      const score = (now - j.msg.activeTime + 1e-6) / j.remaining;
      if (score > bestScore) best = j, bestScore = score;
    }
    if (!best) return;
    const available = cur.selected / cost - cur.slotsUsed;
    if (available + slotLoan < best.remaining * (100 - slotDiscount) / 100) return;
    const at = t.jobs.indexOf(best);
    const curAt = t.jobs.indexOf(cur);
    if (at < curAt) return; // Already ahead of the current job.
    t.jobs.splice(at, 1);
    t.jobs.splice(curAt, 0, best);
    cur.slotsUsed += best.remaining;
    t.current = best;
  }

  private dispatch(q: DestQueue, entry: Entry): void {
    const t = q.transport;
    q.busy++;
    t.busy++;
    this.inFlight++;
    const m = entry.msg.q;
    this.updateConnFlags(q);
    const req = this.requestFor(entry.msg, q.nexthop, entry.recipients);
    req.flags |= q.connFlags;
    this.stats.requests++;
    this.stats.recipients += req.recipients.length;
    this.deps.deliver(t.name, req).then(
      (reply) => this.completed(q, entry, reply),
      (err) => this.failed(q, entry, err),
    ).catch((err) => warn(`${m.queueId}: ${(err as Error).stack ?? err}`));
  }

  /**
   * On-demand connection caching, as Postfix's qmgr decides it: allowed
   * (load and store) once deliveries to the destination run back to back,
   * and storing stops when they neither overlap nor follow each other, so a
   * destination whose backlog has drained still takes the sessions it left
   * in the cache but leaves no new ones.
   */
  private updateConnFlags(q: DestQueue): void {
    const now = Math.floor(this.now());
    const backToBack = Math.floor(q.lastDone) + 1 >= now;
    if (!(q.connFlags & CONN_STORE)) {
      if (backToBack) q.connFlags |= CONN_LOAD | CONN_STORE;
    } else if (!(q.busy > 1 || backToBack)) {
      q.connFlags &= ~CONN_STORE;
    }
  }

  /** The delivery request for some recipients of a message. */
  private requestFor(
    msg: ActiveMessage,
    nexthop: string,
    recipients: QueuedRecipient[],
  ): DeliverRequest {
    const m = msg.q;
    return {
      // The message's trace flags: verify only (probe, sendmail -bv) or record (sendmail -v).
      flags: m.traceFlags,
      queueName: "active",
      queueId: m.queueId,
      dataOffset: m.dataOffset,
      dataSize: m.size,
      nexthop,
      encoding: m.encoding,
      smtputf8: m.smtputf8,
      // A VERP message goes one recipient per request, each with its own sender.
      sender: m.verpDelims && recipients.length
        ? verpSender(m.verpDelims, m.sender, recipients[0])
        : m.sender,
      envid: m.envid,
      ret: m.ret,
      arrival: m.arrival,
      active: msg.activeTime,
      attrs: m.attrs,
      recipients: recipients.map((r) => ({
        origRcpt: r.origRcpt,
        address: r.address,
        offset: r.offset,
        dsnOrcpt: r.dsnOrcpt,
        notify: r.notify,
      })),
    };
  }

  /** An agent answered: per-recipient outcomes, feedback, maybe the end of the message. */
  private async completed(q: DestQueue, entry: Entry, reply: DeliverReply): Promise<void> {
    const t = q.transport;
    q.busy--;
    t.busy--;
    q.lastDone = this.now();
    const msg = entry.msg;
    for (const r of entry.recipients) {
      const outcome = reply.results.get(r.offset) ?? "deferred";
      if (outcome === "deferred") msg.deferred = true;
      else if (outcome === "bounced") msg.bounced = true;
    }
    if (reply.traced) msg.traced = true;
    if (reply.status === DeliverStatus.DEFER) {
      if (q.window.negative()) {
        await this.throttle(q, reply.hopStatus || "4.0.0", reply.hopReason || "unknown error");
      }
    } else {
      q.window.positive(q.busy);
    }
    msg.pending -= entry.recipients.length;
    this.inFlight--;
    this.schedulePump();
    if (msg.pending === 0 && !msg.loading) await this.done(msg);
    this.checkIdle();
  }

  /** The agent could not be reached or died: defer the recipients. */
  private async failed(q: DestQueue, entry: Entry, err: unknown): Promise<void> {
    const t = q.transport;
    q.busy--;
    t.busy--;
    q.lastDone = this.now();
    const unavailable = err instanceof TransportUnavailable;
    const reason = unavailable ? "mail transport unavailable" : "unknown mail transport error";
    warn(`${entry.msg.q.queueId}: transport ${t.name}: ${(err as Error).message}`);
    if (unavailable) {
      // Postfix throttles the whole transport; retried after minimal_backoff_time.
      t.deadUntil = this.now() + this.deps.settings.minimalBackoff;
      t.deadReason = reason;
      this.later(this.deps.settings.minimalBackoff, () => {
        t.deadUntil = 0;
        this.schedulePump();
      });
    }
    for (const r of entry.recipients) await this.deferByQmgr(entry.msg, r, "4.3.0", reason);
    entry.msg.pending -= entry.recipients.length;
    this.inFlight--;
    if (unavailable) await this.flushTransport(t);
    this.schedulePump();
    if (entry.msg.pending === 0 && !entry.msg.loading) await this.done(entry.msg);
    this.checkIdle();
  }

  /** Defers everything waiting for a dead transport. */
  private async flushTransport(t: Transport): Promise<void> {
    for (const q of t.queues.values()) await this.deferQueued(q, "4.3.0", t.deadReason);
  }

  /** The destination is dead: suspend it, defer what waits for it, revive after the backoff. */
  private async throttle(q: DestQueue, dsn: string, reason: string): Promise<void> {
    q.deadUntil = this.now() + this.deps.settings.minimalBackoff;
    q.deadDsn = dsn.startsWith("4.") ? dsn : "4.0.0";
    q.deadReason = reason;
    this.later(this.deps.settings.minimalBackoff, () => this.revive(q));
    await this.deferQueued(q, q.deadDsn, `delivery temporarily suspended: ${reason}`);
  }

  private async deferQueued(q: DestQueue, dsn: string, reason: string): Promise<void> {
    const todo = q.todo;
    q.todo = [];
    for (const entry of todo) {
      if (entry.done) continue;
      entry.done = true;
      const job = entry.job;
      job.entries.splice(job.entries.indexOf(entry), 1);
      const n = chunks(entry.recipients.length, rcptLimit(entry.msg, q.transport));
      job.remaining -= n;
      if (job.remaining === 0) q.transport.finished++;
      for (const r of entry.recipients) await this.deferByQmgr(entry.msg, r, dsn, reason);
      entry.msg.pending -= entry.recipients.length;
      if (entry.msg.pending === 0 && !entry.msg.loading) await this.done(entry.msg);
    }
  }

  private revive(q: DestQueue): void {
    q.deadUntil = 0;
    q.window.reset();
    this.schedulePump();
  }

  /** F trigger: every dead destination and transport may be tried again. */
  private reviveAll(): void {
    for (const t of this.transports.values()) {
      t.deadUntil = 0;
      for (const q of t.queues.values()) if (q.deadUntil) this.revive(q);
    }
    this.schedulePump();
  }

  private later(seconds: number, fn: () => void): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, Math.max(0, seconds * 1000));
    this.timers.add(timer);
  }

  /**
   * A recipient qmgr defers itself: defer log and the delivery log line
   * (relay=none). For a verification request this settles the probe
   * instead (undeliverable), as Postfix's qmgr does through defer_append.
   */
  private async deferByQmgr(
    msg: ActiveMessage,
    rcpt: QueuedRecipient,
    dsn: string,
    reason: string,
  ): Promise<void> {
    const flags = msg.q.traceFlags;
    const entry = (action: string) => ({
      status: dsn,
      action,
      reason,
      diagType: "",
      diagText: "",
    });
    let status = "deferred";
    const verified = (flags & TRACE_ONLY_MASK)
      ? await this.verifyByQmgr(msg, rcpt, dsn, reason)
      : null;
    if (verified) {
      status = verified;
    } else {
      msg.deferred = true;
      if (flags & DeliverFlag.RECORD) {
        if (await this.deps.bounce.append("trace", msg.q.queueId, rcpt, entry("delayed"))) {
          msg.traced = true;
        }
      }
      await this.deps.bounce.append("defer", msg.q.queueId, rcpt, entry("delayed"));
      await this.deps.flush?.(rcpt.address, msg.q.queueId);
    }
    const now = this.now();
    info(deliveryLogLine(
      {
        queueId: msg.q.queueId,
        recipient: rcpt.address,
        origRecipient: rcpt.origRcpt,
        relay: "none",
        times: { arrival: msg.q.arrival, active: msg.activeTime, agentStart: now, connSetup: now },
        dsn,
        status,
        text: reason,
      },
      now,
      this.deps.settings.resolution,
    ));
  }

  /**
   * Reports an undeliverable probe recipient: to the verify service (a
   * probe) or the trace log (sendmail -bv). The log status, or null when
   * the service failed (the recipient is then deferred as usual).
   */
  private async verifyByQmgr(
    msg: ActiveMessage,
    rcpt: QueuedRecipient,
    dsn: string,
    reason: string,
  ): Promise<string | null> {
    const id = msg.q.queueId;
    if (msg.q.traceFlags & DeliverFlag.MTA_VRFY) {
      if (this.deps.verifyNegativeCache === false) return "undeliverable-but-not-cached";
      const update = this.deps.verify;
      let ok = !!update;
      if (ok && rcpt.origRcpt) ok = await update!(rcpt.origRcpt, AddrStatus.DEFER, reason);
      if (ok && rcpt.address.toLowerCase() !== rcpt.origRcpt.toLowerCase()) {
        ok = await update!(rcpt.address, AddrStatus.DEFER, reason);
      }
      if (ok) return "undeliverable";
      warn(`${id}: verify service failure`);
      return null;
    }
    const ok = await this.deps.bounce.append("trace", id, rcpt, {
      status: dsn,
      action: "undeliverable",
      reason,
      diagType: "",
      diagText: "",
    });
    if (ok) {
      msg.traced = true;
      return "undeliverable";
    }
    warn(`${id}: trace service failure`);
    return null;
  }

  /**
   * Every recipient has an outcome: send the notices the logs call for,
   * then remove the file, return it to the sender (expired), or move it to
   * deferred with its next retry time as mtime.
   */
  private async done(msg: ActiveMessage): Promise<void> {
    const { layout, settings } = this.deps;
    const id = msg.q.queueId;
    if (!this.active.has(id)) return;
    this.active.delete(id);
    if (msg.probe) this.probes--;
    this.rcptInMemory -= msg.q.recipients.length;
    const info_ = {
      queueName: "active",
      queueId: id,
      encoding: msg.q.encoding,
      smtputf8: msg.q.smtputf8,
      sender: msg.q.sender,
      envid: msg.q.envid,
      ret: msg.q.ret,
    };
    let keep = false;
    // VERP: a notice per recipient to its VERP sender, unless disable_verp_bounces.
    const verp = settings.disableVerpBounces ? "" : msg.q.verpDelims;
    const flush = (log: "bounce" | "defer") =>
      verp && this.deps.bounceVerp
        ? this.deps.bounceVerp(log, info_, verp)
        : this.deps.bounce.notify("flush", log, info_);
    if (msg.bounced || exists(queueFilePath(layout, "bounce", id))) {
      if (!await flush("bounce")) {
        warn(`${id}: bounce service failure`);
        keep = true;
      }
    }
    let traceSent = false;
    if (msg.traced || exists(queueFilePath(layout, "trace", id))) {
      traceSent = await this.deps.bounce.notify("flush", "trace", info_);
      if (!traceSent) warn(`${id}: trace service failure`);
    }
    const now = this.now();
    if (msg.deferred) {
      const lifetime = msg.q.sender === ""
        ? settings.bounceQueueLifetime
        : settings.maximalQueueLifetime;
      if (now >= msg.q.arrival + lifetime) {
        if (await flush("defer")) {
          info(`${id}: from=<${msg.q.sender}>, status=expired, returned to sender`);
          this.remove(msg);
          return this.afterDone();
        }
        warn(`${id}: defer service failure`);
      } else if (msg.q.warnTime > 0 && Math.floor(now) >= msg.q.warnTime - 1) {
        // A second early, as the reference's qmgr (its clock has whole seconds).
        if (await this.deps.bounce.notify("warn", "defer", info_)) {
          try {
            clearWarnRecord(msg.path, msg.q);
          } catch (err) {
            warn(`${id}: update ${msg.path}: ${(err as Error).message}`);
          }
        }
      }
      keep = true;
    }
    if (keep) {
      // The sendmail -v report went out: later attempts are not recorded again.
      if (traceSent && (msg.q.traceFlags & DeliverFlag.RECORD)) {
        try {
          killTraceRecord(msg.path, msg.q);
        } catch (err) {
          warn(`${id}: update ${msg.path}: ${(err as Error).message}`);
        }
      }
      this.defer(msg, now);
    } else {
      this.remove(msg);
    }
    this.afterDone();
  }

  private afterDone(): void {
    if (this.starved && !this.stopped) {
      this.starved = false;
      this.scan({ incoming: true, deferred: true, ignoreTime: false }).catch((err) =>
        warn(`scan: ${(err as Error).message}`)
      );
    }
    this.checkIdle();
  }

  /** Moves the message to deferred; its mtime is the next retry time (age, within the backoff bounds). */
  private defer(msg: ActiveMessage, now: number): void {
    const { layout, settings } = this.deps;
    const age = now - msg.q.arrival;
    const delay = Math.min(settings.maximalBackoff, Math.max(settings.minimalBackoff, age));
    const to = queueFilePath(layout, "deferred", msg.q.queueId);
    try {
      moveFile(msg.path, to);
      Deno.utimeSync(to, now, now + delay);
    } catch (err) {
      warn(`${msg.q.queueId}: move to deferred: ${(err as Error).message}`);
    }
  }

  private remove(msg: ActiveMessage): void {
    try {
      Deno.removeSync(msg.path);
      info(`${msg.q.queueId}: removed`);
    } catch (err) {
      warn(`${msg.q.queueId}: remove ${msg.path}: ${(err as Error).message}`);
    }
    removeQuiet(queueFilePath(this.deps.layout, "defer", msg.q.queueId));
  }
}

/** The retry service (Postfix's MAIL_SERVICE_RETRY), or `service`, with `reason` as next hop. */
function redirect(res: Resolved | null, reason: string, service = "retry"): Resolved {
  return { transport: service, nexthop: reason, recipient: res?.recipient ?? "", flags: 0 };
}

/** A message's recipients per request on a transport: one for a VERP message (each has its own sender). */
function rcptLimit(msg: ActiveMessage, t: Transport): number {
  return msg.q.verpDelims ? 1 : t.s.rcptLimit;
}

/** The number of requests `n` recipients need at recipient limit `limit` (0: no limit). */
function chunks(n: number, limit: number): number {
  return limit <= 0 ? 1 : Math.ceil(n / limit);
}
