// Test scaffolding for the queue manager: a temporary queue tree, queue
// files written record by record, an in-process delivery agent the test
// controls (it uses the real agent-side session, so recipients are marked
// done in the queue file), and a bounce service that records its calls.

import { configFromText } from "../../../lib/config/mod.ts";
import { createQueueTree, queueFilePath, type QueueLayout } from "../../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../../lib/queue/record.ts";
import type { BounceLog, BounceMessage, BounceService } from "../../../lib/bounce_client.ts";
import type { DsnStatus } from "../../../lib/dsn/status.ts";
import { DeliverySession } from "../../../lib/deliver/agent.ts";
import { deliverError } from "../../../daemons/error.ts";
import type { DeliverReply, DeliverRequest } from "../../../lib/deliver/request.ts";
import { captureLog } from "../../../lib/log.ts";
import { Qmgr, type Resolved } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";

/** A temporary queue tree. */
export interface TestQueue {
  dir: string;
  layout: QueueLayout;
}

/** Creates a queue tree in a fresh folder (deferred hashed, as by default). */
export async function makeQueue(): Promise<TestQueue> {
  const dir = await Deno.makeTempDir({ prefix: "qmgr-test-" });
  const layout = {
    queueDirectory: `${dir}/queue`,
    hashQueueNames: ["deferred", "defer"],
    hashQueueDepth: 1,
  };
  createQueueTree(layout);
  return { dir, layout };
}

let serial = 0x10000;

/** Options for a test message. */
export interface MessageSpec {
  sender?: string;
  recipients: string[];
  /** Arrival time, seconds since the epoch (default now). */
  arrival?: number;
  /** W record value (delay-warning time), when given. */
  warnTime?: number;
  /** NOTIFY bits per recipient. */
  notify?: number;
  body?: string[];
}

/** Writes a complete queue file into `queue` (default incoming); returns its id. */
export function writeMessage(q: TestQueue, spec: MessageSpec, queue = "incoming"): string {
  const id = `A${(serial++).toString(16).toUpperCase()}${
    Math.floor(Math.random() * 0xfff).toString(16).toUpperCase()
  }`;
  const arrival = spec.arrival ?? Date.now() / 1000;
  const body = spec.body ??
    ["Subject: test", "From: " + (spec.sender ?? "sender@example.org"), "", "Hello."];
  const env: Uint8Array[] = [];
  const content = body.map((l) => encodeRecord("N", l));
  const size = content.reduce((n, r) => n + r.length, 0);
  const sec = Math.floor(arrival);
  env.push(encodeRecord("T", `${sec} ${Math.round((arrival - sec) * 1e6)}`));
  if (spec.warnTime !== undefined) {
    env.push(encodeRecord("W", String(spec.warnTime).padStart(15, " ")));
  }
  env.push(encodeRecord("A", "rewrite_context=local"));
  env.push(encodeRecord("S", spec.sender ?? "sender@example.org"));
  for (const r of spec.recipients) {
    if (spec.notify) env.push(encodeRecord("A", `notify_flags=${spec.notify}`));
    env.push(encodeRecord("O", r));
    env.push(encodeRecord("R", r));
  }
  const mesg = encodeRecord("M", "");
  const head = (dataOffset: number) =>
    encodeRecord(
      "C",
      [size, dataOffset, spec.recipients.length, 0, size, 0].map((n) => String(n).padStart(15, " "))
        .join(" "),
    );
  const envBytes = joinRecords(env);
  const dataOffset = head(0).length + envBytes.length + mesg.length;
  const data = joinRecords([
    head(dataOffset),
    envBytes,
    mesg,
    ...content,
    encodeRecord("X", ""),
    encodeRecord("E", ""),
  ]);
  const path = queueFilePath(q.layout, queue, id);
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeFileSync(path, data, { mode: 0o700 });
  Deno.chmodSync(path, 0o700);
  return id;
}

/** One call to the recording bounce service. */
export interface BounceCall {
  kind: "append" | "flush" | "warn";
  log: BounceLog;
  queueId: string;
  rcpt?: string;
  dsn?: DsnStatus;
}

/** A bounce service that records calls and answers success. */
export function recordingBounce(): BounceService & { calls: BounceCall[] } {
  const calls: BounceCall[] = [];
  return {
    calls,
    append(log, queueId, rcpt, dsn) {
      calls.push({ kind: "append", log, queueId, rcpt: rcpt.address, dsn });
      return Promise.resolve(true);
    },
    notify(request, log, msg: BounceMessage) {
      calls.push({ kind: request, log, queueId: msg.queueId });
      return Promise.resolve(true);
    },
  };
}

/** What the controlled agent does with one request. */
export type AgentAction = "sent" | "bounced" | "deferred" | "site-defer" | "hang";

/** A delivery agent in the test's hands: records requests and concurrency per destination. */
export class TestAgent {
  requests: DeliverRequest[] = [];
  inFlight = new Map<string, number>();
  maxInFlight = new Map<string, number>();
  /** In-flight counts seen at each request start, per destination. */
  profile = new Map<string, number[]>();
  delivered: string[] = [];
  /** Requests to the retry service. */
  retried: DeliverRequest[] = [];

  constructor(
    private readonly q: TestQueue,
    private readonly bounce: BounceService,
    public action: (req: DeliverRequest) => AgentAction = () => "sent",
    public delayMs = 1,
  ) {}

  /** The qmgr dependency. */
  deliver = async (transport: string, req: DeliverRequest): Promise<DeliverReply> => {
    this.requests.push(req);
    const key = `${transport}:${req.nexthop}`;
    const n = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, n);
    this.maxInFlight.set(key, Math.max(n, this.maxInFlight.get(key) ?? 0));
    const prof = this.profile.get(key) ?? [];
    prof.push(n);
    this.profile.set(key, prof);
    const session = new DeliverySession(req, {
      layout: this.q.layout,
      bounce: this.bounce,
      resolution: 2,
    });
    if (transport === "retry") {
      // The retry service, as under the master: defers with the next hop as reason.
      this.retried.push(req);
      this.requests.pop();
      try {
        await deliverError(session, true);
        return session.reply();
      } finally {
        session.close();
        this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      }
    }
    const action = this.action(req);
    try {
      if (action === "hang") return await new Promise<never>(() => {});
      await new Promise((r) => setTimeout(r, this.delayMs));
      const status = { dsn: "", relay: "test", text: "" };
      for (const rcpt of req.recipients) {
        if (action === "sent") {
          await session.sent(rcpt, { ...status, dsn: "2.0.0", text: "delivered" });
          this.delivered.push(rcpt.address);
        } else if (action === "bounced") {
          await session.bounced(rcpt, { ...status, dsn: "5.1.1", text: "no such user" });
        } else if (action === "deferred") {
          await session.deferred(rcpt, { ...status, dsn: "4.2.0", text: "try later" });
        }
      }
      if (action === "site-defer") {
        await session.deferSite({
          ...status,
          dsn: "4.4.1",
          text: "connect to test: Connection refused",
        });
      }
      return session.reply();
    } finally {
      session.close();
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
    }
  };
}

/** Resolves user@domain to smtp:domain (error:text for domains named "error.test"). */
export function testResolver(sender: string, address: string): Promise<Resolved> {
  void sender;
  const domain = address.slice(address.lastIndexOf("@") + 1).toLowerCase();
  if (domain === "fail.test") {
    return Promise.resolve({
      transport: "smtp",
      nexthop: domain,
      recipient: address,
      flags: 1 << 3,
    });
  }
  return Promise.resolve({ transport: "smtp", nexthop: domain, recipient: address, flags: 0 });
}

/** A Qmgr over the test queue, with main.cf settings. */
export function makeQmgr(
  q: TestQueue,
  agent: TestAgent,
  bounce: BounceService,
  mainCf = "",
  resolve = testResolver,
): Qmgr {
  const config = configFromText(q.dir, mainCf);
  return new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(config),
    resolve,
    deliver: (t, r) => agent.deliver(t, r),
    bounce,
  });
}

/** Collects log lines while `fn` runs. */
export async function withLog<T>(fn: (lines: string[]) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  captureLog((l) => lines.push(l));
  try {
    return await fn(lines);
  } finally {
    captureLog(undefined);
  }
}

/** The files of a queue (names only). */
export function queueFiles(q: TestQueue, queue: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else out.push(e.name);
    }
  };
  walk(`${q.layout.queueDirectory}/${queue}`);
  return out;
}
