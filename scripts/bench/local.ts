// Benchmark: local(8) deliveries per second. First in process: queue files
// in active delivered through a delivery session by the agent's decision
// procedure (alias lookup in a hash table, user lookup, headers, locking,
// fsync, the queue file marked), to an mbox in the spool and to a Maildir
// at home_mailbox. Then through whole instances: the same queue files put
// in incoming of a running Posthorn instance (master, qmgr, trivial-rewrite,
// local), and, when the reference Postfix is installed and we are root, of
// a throwaway reference instance, the clock stopping when the queue is
// empty; both deliver to the spool mailbox of one user.

import { configFromText } from "../../lib/config/mod.ts";
import { DeliverySession } from "../../lib/deliver/agent.ts";
import type { DeliverRequest } from "../../lib/deliver/request.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { captureLog } from "../../lib/log.ts";
import { createQueueTree, queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import { sendTrigger } from "../../lib/ipc/trigger.ts";
import { ResolveFlag } from "../../lib/rewrite_client.ts";
import { parseQueuedMessage } from "../../daemons/qmgr/message.ts";
import { openMap } from "../../maps/registry.ts";
import type { Dict } from "../../maps/dict.ts";
import { buildAliasTable } from "../../maps/aliases.ts";
import { deliverRequest } from "../../daemons/local/mod.ts";
import { ReplyFixes } from "../../daemons/local/report.ts";
import { localSettings } from "../../daemons/local/settings.ts";
import type { LocalEnv } from "../../daemons/local/state.ts";
import { userByUid } from "../../daemons/local/users.ts";
import { Instance } from "../../tests/daemons/master/instance.ts";

const noBounce: BounceService = {
  append: () => Promise.resolve(true),
  notify: () => Promise.resolve(true),
};

/** Queue files of a ~2 KB message to `rcpt`, written under `queue` of the layout. */
export function writeMessages(
  layout: QueueLayout,
  count: number,
  rcpt: string,
  queue: string,
  owner?: number,
): string[] {
  const now = Math.floor(Date.now() / 1000);
  const ids: string[] = [];
  const lines = ["From: a@example.org", `To: ${rcpt}`, "Subject: bench", ""];
  for (let i = 0; i < 30; i++) lines.push(`line ${i} of a message of about two kilobytes .......`);
  for (let i = 0; i < count; i++) {
    const id = `A${(0x100000 + i).toString(16).toUpperCase()}`;
    const env = [
      encodeRecord("T", `${now} 0`),
      encodeRecord("S", "sender@example.org"),
      encodeRecord("O", rcpt),
      encodeRecord("R", rcpt),
    ];
    const content = lines.map((l) => encodeRecord("N", l));
    const size = content.reduce((n, c) => n + c.length, 0);
    const head = (offset: number) =>
      encodeRecord(
        "C",
        [size, offset, 1, 0, size, 0].map((n) => String(n).padStart(15, " ")).join(" "),
      );
    const envBytes = joinRecords(env);
    const mesg = encodeRecord("M", "");
    const offset = head(0).length + envBytes.length + mesg.length;
    const data = joinRecords([
      head(offset),
      envBytes,
      mesg,
      ...content,
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]);
    const path = queueFilePath(layout, queue, id);
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    Deno.writeFileSync(path, data, { mode: 0o700 });
    Deno.chmodSync(path, 0o700);
    if (owner !== undefined) Deno.chownSync(path, owner, null);
    ids.push(id);
  }
  return ids;
}

/** Deliveries per second in process, to an mbox or a maildir. */
async function inProcess(count: number, maildir: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-local-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  Deno.mkdirSync(`${dir}/spool`);
  Deno.mkdirSync(`${dir}/home`);
  Deno.writeTextFileSync(`${dir}/aliases`, "postmaster: root\nteam: bench, other\n");
  const text = [
    `queue_directory = ${layout.queueDirectory}`,
    `mail_spool_directory = ${dir}/spool`,
    `alias_maps = hash:${dir}/aliases`,
    "myhostname = host.example.com",
    maildir ? "home_mailbox = Maildir/" : "",
  ].join("\n") + "\n";
  const config = configFromText(dir, text);
  await buildAliasTable(`hash:${dir}/aliases`, { config });
  const uid = Deno.uid() ?? 0;
  const gid = Deno.gid() ?? 0;
  const tables = new Map<string, Dict>();
  const env: LocalEnv = {
    settings: localSettings(config, "local"),
    agent: { layout, bounce: noBounce, resolution: 2 },
    openTable(spec) {
      let t = tables.get(spec);
      if (!t) tables.set(spec, t = openMap(spec, { config }));
      return t;
    },
    resolve: (_s, a) =>
      Promise.resolve({ transport: "local", nexthop: "", recipient: a, flags: ResolveFlag.FINAL }),
    privateDir: `${layout.queueDirectory}/private`,
    lookupUser: (name) =>
      name === "bench" ? { name, uid, gid, home: `${dir}/home`, shell: "/bin/sh" } : undefined,
    lookupUid: () => undefined,
    defaultPrivs: { uid, gid },
    privileged: false,
  };
  const ids = writeMessages(layout, count + 50, "bench@example.com", "active");
  const deliver = async (id: string) => {
    const path = queueFilePath(layout, "active", id);
    const msg = parseQueuedMessage(id, Deno.readFileSync(path));
    const req: DeliverRequest = {
      flags: 0,
      queueName: "active",
      queueId: id,
      dataOffset: msg.dataOffset,
      dataSize: msg.size,
      nexthop: "example.com",
      encoding: "7bit",
      smtputf8: 0,
      sender: msg.sender,
      envid: "",
      ret: 0,
      arrival: msg.arrival,
      active: Date.now() / 1000,
      attrs: {},
      recipients: msg.recipients,
    };
    const session = new DeliverySession(req, env.agent);
    try {
      await deliverRequest(session, env, new ReplyFixes());
    } finally {
      session.close();
    }
  };
  captureLog(() => {});
  try {
    for (const id of ids.slice(0, 50)) await deliver(id);
    const t0 = performance.now();
    for (const id of ids.slice(50)) await deliver(id);
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `local: in process, ${maildir ? "Maildir at home_mailbox" : "spool mbox"}: ` +
        `${count} deliveries in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)}/s`,
    );
  } finally {
    captureLog(undefined);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Moves staged files into incoming, wakes qmgr, waits until the queue is empty. */
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
  const deadline = Date.now() + 180_000;
  while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return (performance.now() - t0) / 1000;
}

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

function delivered(log: string): number {
  return log.split("\n").filter((l) => l.includes("status=sent (delivered to mailbox)")).length;
}

const agentsCf = `qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
local     unix  -       n       n       -       -       local
`;

function mainCf(dir: string): string[] {
  return [
    "myhostname = mx.example.com",
    "mydomain = example.com",
    "mydestination = example.com",
    "alias_maps =",
    `mail_spool_directory = ${dir}/spool`,
  ];
}

function report(what: string, count: number, seconds: number, logged: number): void {
  console.log(
    `local: ${what}: ${count} messages to a spool mbox in ${seconds.toFixed(2)} s = ` +
      `${Math.round(count / seconds)}/s (${logged} logged delivered)`,
  );
}

/** The queue files through a running Posthorn instance. */
export async function instanceRun(count: number, user: string, extra = ""): Promise<void> {
  const flags = "run -A --unstable-ffi --unstable-net";
  const launcher = new URL("../../tests/daemons/local/launch.ts", import.meta.url).pathname;
  const inst = await Instance.create(agentsCf, "");
  try {
    Deno.mkdirSync(`${inst.dir}/spool`, { mode: 0o1777 });
    Deno.chmodSync(`${inst.dir}/spool`, 0o1777);
    Deno.writeTextFileSync(
      `${inst.dir}/main.cf`,
      Deno.readTextFileSync(`${inst.dir}/main.cf`) +
        [`posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`, ...mainCf(inst.dir), extra]
          .join("\n") +
        "\n",
    );
    const start = await inst.postfix("start");
    if (start.code !== 0) throw new Error(start.stderr);
    const staged = `${inst.dir}/staged`;
    Deno.mkdirSync(staged);
    const owner = Deno.uid() === 0 ? uidOf("posthorn-test") : undefined;
    const layout = { queueDirectory: inst.dir, hashQueueNames: [], hashQueueDepth: 1 };
    writeMessages(layout, 20, `${user}@example.com`, "staged", owner);
    await drain(inst.queue, staged);
    const before = delivered(inst.readLog());
    writeMessages(layout, count, `${user}@example.com`, "staged", owner);
    const seconds = await drain(inst.queue, staged);
    await new Promise((r) => setTimeout(r, 300));
    const what = `Posthorn instance${extra ? `, ${extra}` : ""}`;
    report(what, count, seconds, delivered(inst.readLog()) - before);
  } finally {
    if (Deno.env.get("LOCAL_BENCH_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
}

/** The same through a throwaway reference instance (root, Postfix installed). */
async function referenceRun(count: number, user: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-local-ref-" });
  const run = (args: string[]) =>
    new Deno.Command("postfix", { args: ["-c", dir, ...args], stdout: "null", stderr: "null" })
      .output();
  try {
    Deno.chmodSync(dir, 0o755);
    for (const d of ["q", "d", "spool"]) Deno.mkdirSync(`${dir}/${d}`);
    Deno.chmodSync(`${dir}/spool`, 0o1777);
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
        ...mainCf(dir),
      ].join("\n") + "\n",
    );
    Deno.writeTextFileSync(
      `${dir}/master.cf`,
      agentsCf + "postlog   unix-dgram n  -       n       -       1       postlogd\n",
    );
    await run(["set-permissions"]);
    await run(["start"]);
    const staged = `${dir}/staged`;
    Deno.mkdirSync(staged);
    const layout = { queueDirectory: dir, hashQueueNames: [], hashQueueDepth: 1 };
    writeMessages(layout, 20, `${user}@example.com`, "staged", uidOf("postfix"));
    await drain(`${dir}/q`, staged);
    const log = () => Deno.readTextFileSync(`${dir}/maillog`);
    const before = delivered(log());
    writeMessages(layout, count, `${user}@example.com`, "staged", uidOf("postfix"));
    const seconds = await drain(`${dir}/q`, staged);
    await new Promise((r) => setTimeout(r, 300));
    report("reference Postfix instance", count, seconds, delivered(log()) - before);
  } finally {
    await run(["stop"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function referenceInstalled(): boolean {
  try {
    Deno.statSync("/usr/lib/postfix/sbin/local");
    return Deno.uid() === 0 && uidOf("postfix") !== undefined;
  } catch {
    return false;
  }
}

/** Prints local deliveries per second. */
export async function bench(): Promise<void> {
  await inProcess(500, false);
  await inProcess(500, true);
  const root = Deno.uid() === 0;
  const user = root ? "posthorn-test" : userByUid(Deno.uid() ?? 0)?.name;
  if (!user) {
    console.log("local: instances not measured (this uid has no passwd entry)");
    return;
  }
  await instanceRun(500, user);
  // Each delivery is one connection: with max_use 100 a local process is
  // replaced every 100 deliveries, and a process start is what Deno costs.
  await instanceRun(500, user, "max_use = 100000");
  if (referenceInstalled()) await referenceRun(500, user);
  else console.log("local: reference Postfix not measured (needs root and the postfix package)");
}
