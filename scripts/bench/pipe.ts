// Benchmark: pipe(8) deliveries per second. One queued message handed to the
// pipe delivery code over the delivery-agent protocol (in process, on a unix
// socket) whose command is `cat > /dev/null`, one request at a time and four
// at once (as four pipe processes would take them); beside it the bare cost
// of running a command through lib/deliver/command.ts and the system's own
// fork+exec rate from a shell loop, the floor any pipe(8) stands on. Then
// whole instances: the same queue files put into incoming, the instance
// started, and the time from the first pipe delivery to the last measured
// from the log (qmgr, pipe processes, the command and the bounce service
// for each); the reference's figure beside Posthorn's when Postfix is
// installed and this runs as root (Postfix starts only as root).

import * as net from "node:net";
import { configFromText } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { createQueueTree, queueFilePath } from "../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { handleDeliveryConnection } from "../../lib/deliver/agent.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import type { DeliverRequest } from "../../lib/deliver/request.ts";
import { runCommand } from "../../lib/deliver/command.ts";
import { parsePipeAttributes } from "../../daemons/pipe/attributes.ts";
import { deliverPipe } from "../../daemons/pipe/deliver.ts";

const quietBounce: BounceService = {
  append: () => Promise.resolve(true),
  notify: () => Promise.resolve(true),
};

/** Writes one active queue file; returns the request that delivers it. */
function queueMessage(queueDirectory: string): DeliverRequest {
  const layout = { queueDirectory, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  const id = "BENCH0PIPE";
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  const body = ["Subject: bench", "From: bench@example.com", ""];
  for (let n = 0; n < 4000; n += line.length + 1) body.push(line);
  const content = body.map((l) => encodeRecord("N", l));
  const size = content.reduce((n, r) => n + r.length, 0);
  const env = joinRecords([
    encodeRecord("T", `${Math.floor(Date.now() / 1000)} 0`),
    encodeRecord("S", "bench@example.com"),
    encodeRecord("R", "rcpt@example.com"),
  ]);
  const head = (offset: number) =>
    encodeRecord("C", [size, offset, 1, 0, size, 0].map((n) => String(n).padStart(15)).join(" "));
  const mesg = encodeRecord("M", "");
  const dataOffset = head(0).length + env.length + mesg.length;
  const rcptOffset = head(0).length + env.length - encodeRecord("R", "rcpt@example.com").length;
  const path = queueFilePath(layout, "active", id);
  Deno.writeFileSync(
    path,
    joinRecords([
      head(dataOffset),
      env,
      mesg,
      ...content,
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]),
  );
  // Mode 0700 marks a queue file complete.
  Deno.chmodSync(path, 0o700);
  return {
    flags: 0,
    queueName: "active",
    queueId: id,
    dataOffset,
    dataSize: size,
    nexthop: "example.com",
    encoding: "",
    smtputf8: 0,
    sender: "bench@example.com",
    envid: "",
    ret: 0,
    arrival: Date.now() / 1000,
    active: Date.now() / 1000,
    attrs: {},
    recipients: [{
      origRcpt: "",
      address: "rcpt@example.com",
      offset: rcptOffset,
      dsnOrcpt: "",
      notify: 0,
    }],
  };
}

/** Runs `once` for about `ms`, `parallel` at a time; returns completions per second. */
async function rate(once: () => Promise<unknown>, parallel: number, ms = 2500): Promise<number> {
  for (let i = 0; i < 5; i++) await once();
  let count = 0;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() - start < ms) {
      await once();
      count++;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return count / ((performance.now() - start) / 1000);
}

/** fork+exec of /bin/true from a shell loop: commands per second. */
function shellFloor(): number {
  const n = 500;
  const start = performance.now();
  new Deno.Command("/bin/sh", {
    args: ["-c", `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`],
  })
    .outputSync();
  return n / ((performance.now() - start) / 1000);
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-pipe-" });
  // The command runs as user= in the queue directory.
  await Deno.chmod(dir, 0o755);
  captureLog(Deno.env.get("BENCH_LOG") ? (l) => console.error(l) : () => {});
  try {
    const request = queueMessage(`${dir}/queue`);
    await Deno.chmod(`${dir}/queue`, 0o755);
    const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
    const config = configFromText(dir, "mail_owner = no-such-owner\n");
    const user = Deno.uid() === 0 ? "nobody" : (Deno.env.get("USER") ?? "nobody");
    const attrs = parsePipeAttributes(
      [`user=${user}`, "flags=R", "argv=/bin/sh", "-c", "cat > /dev/null", "${recipient}"],
      config,
    );
    const settings = {
      service: "bench",
      attrs,
      layout,
      queueDirectory: layout.queueDirectory,
      timeLimit: 100,
      delimiters: "+",
      exportEnvironment: [],
      importEnvironment: [],
      masterCf: `${dir}/master.cf`,
    };
    const path = `${dir}/pipe.sock`;
    const server = net.createServer((conn) => {
      handleDeliveryConnection(
        conn,
        { layout, bounce: quietBounce, resolution: 2 },
        (s) => deliverPipe(s, settings),
      ).finally(() => conn.end());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const deliver = async () => {
      const reply = await sendDeliverRequest(path, request);
      const outcome = [...reply.results.values()][0];
      if (outcome !== "sent") throw new Error(`pipe bench: delivery ${outcome}`);
    };
    const bare = await rate(() => runCommand({ argv: ["/bin/true"], timeLimit: 100 }), 1);
    const one = await rate(deliver, 1);
    const four = await rate(deliver, 4);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    console.log(`pipe: command through lib/deliver/command (/bin/true): ${bare.toFixed(0)}/s`);
    console.log(
      `pipe: deliveries (4 KB message, sh -c 'cat > /dev/null'), one at a time: ${
        one.toFixed(0)
      }/s`,
    );
    console.log(`pipe: deliveries, four at once: ${four.toFixed(0)}/s`);
    console.log(
      `pipe: floor, fork+exec of /bin/true from a shell loop: ${shellFloor().toFixed(0)}/s`,
    );
  } finally {
    captureLog(undefined);
    await Deno.remove(dir, { recursive: true });
  }
  await instances(500);
}

/** One queue file in Postfix's format, as cleanup would have left it in incoming. */
function queueFileBytes(rcpt: string): Uint8Array {
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  const body = ["Subject: bench", "From: bench@example.com", ""];
  for (let n = 0; n < 4000; n += line.length + 1) body.push(line);
  const content = body.map((l) => encodeRecord("N", l));
  const size = content.reduce((n, r) => n + r.length, 0);
  const env = joinRecords([
    encodeRecord("T", `${Math.floor(Date.now() / 1000)} 0`),
    encodeRecord("A", "rewrite_context=local"),
    encodeRecord("S", "bench@example.com"),
    encodeRecord("O", rcpt),
    encodeRecord("R", rcpt),
  ]);
  const head = (offset: number) =>
    encodeRecord("C", [size, offset, 1, 0, size, 0].map((n) => String(n).padStart(15)).join(" "));
  const mesg = encodeRecord("M", "");
  const dataOffset = head(0).length + env.length + mesg.length;
  return joinRecords([
    head(dataOffset),
    env,
    mesg,
    ...content,
    encodeRecord("X", ""),
    encodeRecord("E", ""),
  ]);
}

/** Puts `count` complete queue files into `incoming`, owned by the queue's owner. */
function fillIncoming(queueDirectory: string, count: number, owner?: { uid: number; gid: number }) {
  const dir = `${queueDirectory}/incoming`;
  for (let i = 0; i < count; i++) {
    const id = `B${(0x100000 + i).toString(16).toUpperCase()}E`;
    const path = `${dir}/${id}`;
    Deno.writeFileSync(path, queueFileBytes(`rcpt${i}@bench.example`));
    if (owner) Deno.chownSync(path, owner.uid, owner.gid);
    Deno.chmodSync(path, 0o700);
  }
}

/** Pipe deliveries logged so far. */
function deliveriesLogged(maillog: string): number {
  try {
    return Deno.readTextFileSync(maillog).split("relay=bench,").length - 1;
  } catch {
    return 0;
  }
}

/**
 * Seconds from the first to the last of `count` more pipe deliveries (after
 * `before` already logged), read from the log as it grows.
 */
async function deliverySpan(
  maillog: string,
  count: number,
  before = 0,
  limitMs = 120_000,
): Promise<number> {
  const started = performance.now();
  let first = 0;
  for (;;) {
    const sent = deliveriesLogged(maillog) - before;
    if (sent > 0 && !first) first = performance.now();
    if (sent >= count) return (performance.now() - first) / 1000;
    if (performance.now() - started > limitMs) {
      throw new Error(`pipe bench: ${sent} of ${count} delivered`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

function idOf(name: string): { uid: number; gid: number } | undefined {
  const out = new Deno.Command("id", { args: ["-u", name], stdout: "piped", stderr: "null" })
    .outputSync();
  if (!out.success) return undefined;
  const gid = new Deno.Command("id", { args: ["-g", name], stdout: "piped" }).outputSync();
  const dec = new TextDecoder();
  return { uid: Number(dec.decode(out.stdout).trim()), gid: Number(dec.decode(gid.stdout).trim()) };
}

function run(file: string, args: string[], env: Record<string, string> = {}): boolean {
  return new Deno.Command(file, { args, stdout: "null", stderr: "null", env }).outputSync().success;
}

const benchService = "bench     unix  -       n       n       -       -       pipe\n" +
  "  flags=R user=nobody argv=/bin/sh -c { cat > /dev/null }\n";

/** Posthorn: a whole instance run from source, `count` messages to a pipe service. */
async function posthornInstance(count: number): Promise<number | undefined> {
  const root = new URL("../../", import.meta.url).pathname;
  const flags = ["run", "-A", "--unstable-ffi", "--unstable-net"];
  const launcher = `${root}tests/daemons/pipe/launch.ts`;
  const dir = await Deno.makeTempDir({ prefix: "bench-pipe-instance-" });
  await Deno.chmod(dir, 0o755);
  // As root the daemons run as mail_owner: a user of its own, as the tests use.
  const ownerName = Deno.uid() === 0 ? "posthorn-test" : "";
  const owner = ownerName ? idOf(ownerName) : undefined;
  if (ownerName && !owner) return undefined;
  Deno.writeTextFileSync(
    `${dir}/main.cf`,
    [
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${dir}/maillog`,
      `posthorn_launcher = ${Deno.execPath()} ${flags.join(" ")} ${launcher}`,
      ...(ownerName ? [`mail_owner = ${ownerName}`] : []),
      "myhostname = bench.example.com",
      "mydestination =",
      "transport_maps = inline:{bench.example=bench:}",
      "",
    ].join("\n"),
  );
  Deno.writeTextFileSync(
    `${dir}/master.cf`,
    [
      "pickup    unix  n       -       n       60      1       pickup",
      "cleanup   unix  n       -       n       -       0       cleanup",
      "qmgr      unix  n       -       n       300     1       qmgr",
      "rewrite   unix  -       -       n       -       -       trivial-rewrite",
      "bounce    unix  -       -       n       -       0       bounce",
      "defer     unix  -       -       n       -       0       bounce",
      "trace     unix  -       -       n       -       0       bounce",
      benchService,
    ].join("\n"),
  );
  const postfix = (command: string) =>
    run(Deno.execPath(), [...flags, launcher, "postfix", "-c", dir, command], { NO_COLOR: "1" });
  try {
    // Warm-up: the first start fills the daemons' module cache.
    if (!postfix("start")) return undefined;
    fillIncoming(`${dir}/queue`, 5, owner);
    await deliverySpan(`${dir}/maillog`, 5, 0, 60_000);
    postfix("stop");
    const before = deliveriesLogged(`${dir}/maillog`);
    fillIncoming(`${dir}/queue`, count, owner);
    if (!postfix("start")) return undefined;
    return count / await deliverySpan(`${dir}/maillog`, count, before);
  } finally {
    postfix("stop");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The reference: Postfix's own instance in a temporary folder, the same queue files. */
async function referenceInstance(count: number): Promise<number | undefined> {
  if (Deno.uid() !== 0 || !exists("/usr/sbin/postfix") || !exists("/usr/lib/postfix/sbin/pipe")) {
    return undefined;
  }
  const owner = idOf("postfix");
  if (!owner) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "bench-pipe-ref-" });
  await Deno.chmod(dir, 0o755);
  Deno.mkdirSync(`${dir}/etc`);
  Deno.mkdirSync(`${dir}/data`);
  Deno.mkdirSync(`${dir}/queue`);
  Deno.chownSync(`${dir}/data`, owner.uid, owner.gid);
  Deno.writeTextFileSync(
    `${dir}/etc/main.cf`,
    [
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${dir}/maillog`,
      "maillog_file_prefixes = /tmp, /var, /dev/stdout",
      "myhostname = bench.example.com",
      "mydestination =",
      "inet_interfaces = loopback-only",
      "transport_maps = inline:{bench.example=bench:}",
      "",
    ].join("\n"),
  );
  Deno.writeTextFileSync(
    `${dir}/etc/master.cf`,
    [
      "pickup    unix  n       -       n       60      1       pickup",
      "cleanup   unix  n       -       n       -       0       cleanup",
      "qmgr      unix  n       -       n       300     1       qmgr",
      "rewrite   unix  -       -       n       -       -       trivial-rewrite",
      "bounce    unix  -       -       n       -       0       bounce",
      "defer     unix  -       -       n       -       0       bounce",
      "trace     unix  -       -       n       -       0       bounce",
      "postlog   unix-dgram n  -       n       -       1       postlogd",
      benchService,
    ].join("\n"),
  );
  const postfix = (command: string) => run("/usr/sbin/postfix", ["-c", `${dir}/etc`, command]);
  try {
    // check creates the queue directories start insists on.
    postfix("check");
    if (!postfix("start") && !postfix("start")) return undefined;
    fillIncoming(`${dir}/queue`, 5, owner);
    await deliverySpan(`${dir}/maillog`, 5, 0, 60_000);
    postfix("stop");
    const before = deliveriesLogged(`${dir}/maillog`);
    fillIncoming(`${dir}/queue`, count, owner);
    // The master takes a moment to go; start refuses meanwhile.
    let started = false;
    for (let i = 0; i < 10 && !started; i++) {
      await new Promise((r) => setTimeout(r, 500));
      started = postfix("start");
    }
    if (!started) return undefined;
    return count / await deliverySpan(`${dir}/maillog`, count, before);
  } finally {
    postfix("stop");
    await new Promise((r) => setTimeout(r, 500));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Prints the whole-instance figures. */
async function instances(count: number): Promise<void> {
  const ours = await posthornInstance(count).catch((err) => {
    console.log(`pipe: whole instance: ${(err as Error).message}`);
    return undefined;
  });
  const ref = await referenceInstance(count).catch(() => undefined);
  console.log(
    `pipe: whole instance, ${count} queued messages to a pipe service: ` +
      `${ours === undefined ? "n/a" : ours.toFixed(0) + "/s"}` +
      (ref === undefined ? "" : ` (reference Postfix: ${ref.toFixed(0)}/s)`),
  );
}

if (import.meta.main) await bench();
