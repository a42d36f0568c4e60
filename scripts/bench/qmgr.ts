// Benchmark: recipients scheduled per second by the queue manager's core,
// for messages with 1 and with 50 recipients: queue files in incoming,
// moved to active, read, resolved (an in-process resolver), grouped,
// delivered by an agent that accepts at once, and removed. Two agents: an
// in-process function (the scheduler and queue-file work alone), and the
// real delivery request protocol over a unix socket with the agent-side
// session (log line, D mark in the queue file per recipient). Then the
// same queue files through a running instance (master, qmgr, trivial-rewrite
// and discard agents), and, when the reference Postfix is installed and we
// are root, through a throwaway reference instance: the files are put in
// incoming, qmgr is triggered, and the clock stops when the queue is empty.

import * as net from "node:net";
import { configFromText } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { createQueueTree, queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { handleDeliveryConnection } from "../../lib/deliver/agent.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import type { DeliverReply, DeliverRequest } from "../../lib/deliver/request.ts";
import { Qmgr } from "../../daemons/qmgr/core.ts";
import { sendTrigger } from "../../lib/ipc/trigger.ts";
import { Instance, serviceProcs } from "../../tests/daemons/master/instance.ts";
import { qmgrSettings } from "../../daemons/qmgr/settings.ts";

const noBounce: BounceService = {
  append: () => Promise.resolve(true),
  notify: () => Promise.resolve(true),
};

function writeMessages(
  layout: QueueLayout,
  count: number,
  rcpts: number,
  queue = "incoming",
  owner?: number,
): void {
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i++) {
    const id = `B${(0x100000 + i).toString(16).toUpperCase()}`;
    const env = [encodeRecord("T", `${now} 0`), encodeRecord("S", "sender@example.org")];
    for (let r = 0; r < rcpts; r++) {
      env.push(encodeRecord("R", `user${r}@dest${(i + r) % 10}.example`));
    }
    const content = [
      encodeRecord("N", "Subject: bench"),
      encodeRecord("N", ""),
      encodeRecord("N", "Hello."),
    ];
    const size = content.reduce((n, c) => n + c.length, 0);
    // The size record gives the content's size and offset, as the reference's qmgr checks.
    const head = (offset: number) =>
      encodeRecord(
        "C",
        [size, offset, rcpts, 0, size, 0].map((n) => String(n).padStart(15, " ")).join(" "),
      );
    const envelope = joinRecords(env);
    const mesg = encodeRecord("M", "");
    const data = joinRecords([
      head(head(0).length + envelope.length + mesg.length),
      envelope,
      mesg,
      ...content,
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]);
    const path = queueFilePath(layout, queue, id);
    Deno.writeFileSync(path, data, { mode: 0o700 });
    if (owner !== undefined) Deno.chownSync(path, owner, null);
  }
}

type Deliver = (transport: string, req: DeliverRequest) => Promise<DeliverReply>;

/** Accepts every recipient at once, in process. */
const acceptAll: Deliver = (_t, req) =>
  Promise.resolve({
    status: 0,
    hopStatus: "",
    hopReason: "",
    traced: false,
    results: new Map(req.recipients.map((r) => [r.offset, "sent" as const])),
  });

async function run(count: number, rcpts: number, overSocket: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-qmgr-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  writeMessages(layout, count, rcpts);
  let deliver = acceptAll;
  let server: net.Server | undefined;
  if (overSocket) {
    const path = `${dir}/agent.sock`;
    const env = { layout, bounce: noBounce, resolution: 2 };
    server = net.createServer((conn) => {
      handleDeliveryConnection(conn, env, async (s) => {
        for (const r of s.request.recipients) {
          await s.sent(r, { dsn: "2.0.0", relay: "none", text: "accepted" });
        }
      }).finally(() => conn.end());
    });
    await new Promise<void>((resolve) => server!.listen(path, resolve));
    deliver = (_t, req) => sendDeliverRequest(path, req);
  }
  const config = configFromText(dir, `queue_directory = ${dir}/queue\n`);
  const qmgr = new Qmgr({
    layout,
    settings: qmgrSettings(config),
    resolve: (_s, address) =>
      Promise.resolve({
        transport: "smtp",
        nexthop: address.slice(address.indexOf("@") + 1),
        recipient: address,
        flags: 0,
      }),
    deliver,
    bounce: noBounce,
  });
  captureLog(() => {});
  const t0 = performance.now();
  await qmgr.start();
  await qmgr.idle();
  const seconds = (performance.now() - t0) / 1000;
  captureLog(undefined);
  qmgr.stop();
  server?.close();
  const total = count * rcpts;
  const how = overSocket ? "agent over a unix socket (protocol, D marks)" : "in-process agent";
  console.log(
    `qmgr: ${count} messages x ${rcpts} recipient(s), ${how}: ${total} recipients in ` +
      `${seconds.toFixed(2)} s = ${Math.round(total / seconds)} recipients/s, ` +
      `${Math.round(count / seconds)} messages/s (${qmgr.stats.requests} requests)`,
  );
  await Deno.remove(dir, { recursive: true });
}

/** Moves prepared files into incoming, triggers qmgr, and times until the queue is empty. */
async function drain(queueDir: string, staged: string): Promise<number> {
  const names = [...Deno.readDirSync(staged)].map((e) => e.name);
  const t0 = performance.now();
  for (const name of names) Deno.renameSync(`${staged}/${name}`, `${queueDir}/incoming/${name}`);
  await sendTrigger(`${queueDir}/public/qmgr`, "I");
  const busy = () =>
    ["incoming", "active", "deferred"].some((q) => {
      const walk = (dir: string): boolean =>
        [...Deno.readDirSync(dir)].some((e) => e.isDirectory ? walk(`${dir}/${e.name}`) : true);
      return walk(`${queueDir}/${q}`);
    });
  const deadline = Date.now() + 120_000;
  while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return (performance.now() - t0) / 1000;
}

/** CPU seconds used so far by each service's processes (QMGR_BENCH_CPU=1). */
function printCpu(inst: Instance): void {
  const master = inst.masterPid();
  for (const name of ["qmgr", "discard", "rewrite", "bounce"]) {
    let ticks = 0;
    for (const pid of serviceProcs(master, name)) {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    }
    console.log(`  ${name}: ${(ticks / 100).toFixed(2)} s CPU`);
  }
  const lines = inst.readLog().split("\n").filter((l) => l.includes("status=sent"));
  for (const l of lines.slice(-3)) console.log("  " + l.slice(l.indexOf("delay=")));
}

function countSent(log: string): number {
  return log.split("\n").filter((l) => l.includes(", status=sent (")).length;
}

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

const launcher = new URL("../../tests/daemons/qmgr/launch.ts", import.meta.url).pathname;
const agentsCf = `qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       -       discard
retry     unix  -       -       n       -       -       error
error     unix  -       -       n       -       -       error
`;
const mainCf = [
  "myhostname = mx.example.com",
  "mydestination =",
  "default_transport = discard:accepted",
];

function report(what: string, count: number, rcpts: number, seconds: number): void {
  const total = count * rcpts;
  console.log(
    `qmgr: ${count} messages x ${rcpts} recipient(s), ${what}: ${total} recipients in ` +
      `${seconds.toFixed(2)} s = ${Math.round(total / seconds)} recipients/s`,
  );
}

/** The queue files through a running Posthorn instance with discard agents. */
async function instanceRun(count: number, rcpts: number, extra = ""): Promise<void> {
  const flags = "run -A --unstable-ffi --unstable-net";
  const inst = await Instance.create(
    agentsCf,
    [`posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`, ...mainCf, extra].join("\n"),
  );
  const staged = `${inst.dir}/staged`;
  try {
    const start = await inst.postfix("start");
    if (start.code !== 0) throw new Error(start.stderr);
    Deno.mkdirSync(staged);
    const owner = Deno.uid() === 0 ? uidOf("posthorn-test") : undefined;
    const layout = { queueDirectory: inst.dir, hashQueueNames: [], hashQueueDepth: 1 };
    // A warm-up batch first: the agents and trivial-rewrite start on demand.
    writeMessages(layout, 50, rcpts, "staged", owner);
    await drain(inst.queue, staged);
    writeMessages(layout, count, rcpts, "staged", owner);
    const seconds = await drain(inst.queue, staged);
    await new Promise((r) => setTimeout(r, 500));
    if (Deno.env.get("QMGR_BENCH_CPU")) printCpu(inst);
    const sent = countSent(inst.readLog());
    const what = `Posthorn instance, discard agents${extra ? `, ${extra}` : ""}`;
    report(`${what} (${sent - 50 * rcpts} logged sent)`, count, rcpts, seconds);
  } finally {
    await inst.destroy();
  }
}

/** The same through a throwaway reference instance (root, Postfix installed). */
export async function referenceRun(count: number, rcpts: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-qmgr-ref-" });
  const run = (args: string[]) =>
    new Deno.Command("postfix", { args: ["-c", dir, ...args], stdout: "null", stderr: "null" })
      .output();
  try {
    Deno.chmodSync(dir, 0o755);
    Deno.mkdirSync(`${dir}/q`);
    Deno.mkdirSync(`${dir}/d`);
    Deno.chownSync(`${dir}/d`, uidOf("postfix")!, null);
    Deno.writeTextFileSync(
      `${dir}/main.cf`,
      [
        "compatibility_level = 3.6",
        `queue_directory = ${dir}/q`,
        `data_directory = ${dir}/d`,
        `maillog_file = ${dir}/maillog`,
        `maillog_file_prefixes = ${dir}`,
        "inet_interfaces = loopback-only",
        ...mainCf,
      ].join("\n") + "\n",
    );
    Deno.writeTextFileSync(
      `${dir}/master.cf`,
      agentsCf + "postlog   unix-dgram n  -       n       -       1       postlogd\n",
    );
    await run(["set-permissions"]);
    await run(["start"]);
    Deno.mkdirSync(`${dir}/staged`);
    const layout = { queueDirectory: dir, hashQueueNames: [], hashQueueDepth: 1 };
    writeMessages(layout, 50, rcpts, "staged", uidOf("postfix"));
    await drain(`${dir}/q`, `${dir}/staged`);
    writeMessages(layout, count, rcpts, "staged", uidOf("postfix"));
    const seconds = await drain(`${dir}/q`, `${dir}/staged`);
    await new Promise((r) => setTimeout(r, 500));
    const sent = countSent(Deno.readTextFileSync(`${dir}/maillog`));
    report(
      `reference Postfix instance, discard agents (${sent - 50 * rcpts} logged sent)`,
      count,
      rcpts,
      seconds,
    );
  } finally {
    await run(["stop"]);
    if (!Deno.env.get("QMGR_BENCH_KEEP")) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    } else console.log(`kept ${dir}`);
  }
}

function referenceInstalled(): boolean {
  try {
    Deno.statSync("/usr/sbin/postfix");
    return Deno.uid() === 0 && uidOf("postfix") !== undefined;
  } catch {
    return false;
  }
}

/** Prints recipients per second for 1 and 50 recipients per message. */
export async function bench(): Promise<void> {
  if (!Deno.env.get("QMGR_BENCH_INSTANCES_ONLY")) {
    await run(10_000, 1, false);
    await run(10_000, 50, false);
    await run(2_000, 1, true);
    await run(2_000, 50, true);
  }
  for (const rcpts of [1, 50]) {
    await instanceRun(1_000, rcpts);
    // Each delivery is one connection: with max_use 100 an agent process is
    // replaced every 100 deliveries, and a process start is what Deno costs.
    if (rcpts === 1) await instanceRun(1_000, rcpts, "max_use = 100000");
    if (referenceInstalled()) await referenceRun(1_000, rcpts);
    else console.log("qmgr: reference Postfix not measured (needs root and the postfix package)");
  }
}

if (import.meta.main) await bench();
