// Benchmark: end-to-end relay throughput. smtp-source sends N messages
// (2000; RELAY_BENCH_MESSAGES to change, e.g. 10000) over 10 and over 50
// parallel sessions (RELAY_BENCH_SESSIONS, e.g. "50") to Posthorn's smtpd; the instance queues them and its
// smtp agent relays each to smtp-sink. The clock runs from the first
// message in to the last `status=sent` in the log. Printed: messages per
// second, the CPU time of the whole instance (master and every daemon,
// exited ones included through the master's child times), and its peak
// memory (PSS summed over the instance's processes, sampled every 200 ms).
// Posthorn runs with its connection cache as Postfix's defaults have it
// (scache in master.cf, smtp_connection_cache_on_demand = yes) and once with
// on-demand caching off; the share of deliveries that reused a cached
// session (conn_use= in the log) is printed with each. The reference
// Postfix does the same work beside it when installed and we are root (with
// its own scache and default settings).

import { descendants, Instance } from "../../tests/daemons/master/instance.ts";
import { startRelayInstance } from "../../tests/daemons/smtp/relay_instance.ts";

const SINK = "/usr/sbin/smtp-sink";
const SOURCE = "/usr/sbin/smtp-source";
const TICK = 100; // clock ticks per second (sysconf(_SC_CLK_TCK) on Linux)

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Every live process under `pid`, itself included. */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...descendants(out[i]));
  return out;
}

/** utime+stime+cutime+cstime of a process tree, in seconds. */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // Exited: its time is in its parent's child times once reaped.
    }
  }
  return ticks / TICK;
}

/** PSS summed over a process tree, in MB. */
function pssMb(pid: number): number {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      const m = /^Pss:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${p}/smaps_rollup`));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // Exited.
    }
  }
  return kb / 1024;
}

function countSent(log: string): number {
  return (log.match(/ status=sent \(/g) ?? []).length;
}

function startSink(port: number): Deno.ChildProcess {
  return new Deno.Command(SINK, {
    args: [...(Deno.uid() === 0 ? ["-u", "root"] : []), "-m", "1000", `127.0.0.1:${port}`, "256"],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function source(port: number, count: number, sessions: number): Promise<void> {
  const out = await new Deno.Command(SOURCE, {
    args: [
      "-m",
      String(count),
      "-s",
      String(sessions),
      "-f",
      "bench@sender.example",
      "-t",
      "rcpt@far.example",
      `127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`smtp-source: ${new TextDecoder().decode(out.stderr)}`);
}

interface Figures {
  seconds: number;
  cpu: number;
  peakPss: number;
  sent: number;
  /** Deliveries over a session taken from the connection cache. */
  reused: number;
}

function countReused(log: string): number {
  return (log.match(/, conn_use=\d+, delay=.* status=sent \(/g) ?? []).length;
}

/** Sends `count` messages and waits for their status=sent lines. */
async function measure(
  port: number,
  count: number,
  sessions: number,
  masterPid: number,
  readLog: () => string,
): Promise<Figures> {
  const before = countSent(readLog());
  const reusedBefore = countReused(readLog());
  const cpu0 = cpuSeconds(masterPid);
  let peakPss = pssMb(masterPid);
  const sampler = setInterval(() => peakPss = Math.max(peakPss, pssMb(masterPid)), 200);
  const t0 = performance.now();
  let sent = 0;
  try {
    await source(port, count, sessions);
    const deadline = Date.now() + 30 * 60_000;
    while (Date.now() < deadline) {
      sent = countSent(readLog()) - before;
      if (sent >= count) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - t0) / 1000;
  const reused = countReused(readLog()) - reusedBefore;
  return { seconds, cpu: cpuSeconds(masterPid) - cpu0, peakPss, sent, reused };
}

function print(who: string, count: number, sessions: number, f: Figures): void {
  console.log(
    `relay: ${who}, ${count} messages, ${sessions} sessions: ${f.sent} sent in ` +
      `${f.seconds.toFixed(2)} s = ${(f.sent / f.seconds).toFixed(0)} msg/s; ` +
      `CPU ${f.cpu.toFixed(1)} s (${((f.cpu / f.seconds) * 100).toFixed(0)}% of one core); ` +
      `peak PSS ${f.peakPss.toFixed(0)} MB; ` +
      `${f.reused} (${((f.reused / Math.max(f.sent, 1)) * 100).toFixed(0)}%) over cached sessions`,
  );
}

async function posthornRun(
  count: number,
  sessions: number,
  cacheOn: boolean,
): Promise<void> {
  const sinkPort = freePort();
  const sink = startSink(sinkPort);
  let inst: Instance | undefined;
  try {
    const started = await startRelayInstance(
      `[127.0.0.1]:${sinkPort}`,
      cacheOn ? [] : ["smtp_connection_cache_on_demand = no"],
    );
    inst = started.inst;
    const readLog = () => inst!.readLog();
    // Warm-up: the daemons start on demand.
    await measure(started.port, 20, 5, inst.masterPid(), readLog);
    const f = await measure(started.port, count, sessions, inst.masterPid(), readLog);
    print(`Posthorn (connection cache ${cacheOn ? "on demand" : "off"})`, count, sessions, f);
  } finally {
    await inst?.destroy();
    sink.kill();
    await sink.status;
  }
}

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

const referenceMasterCf = (port: number) => `
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

async function referenceRun(count: number, sessions: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-relay-ref-" });
  const run = (args: string[]) =>
    new Deno.Command("postfix", { args: ["-c", dir, ...args], stdout: "null", stderr: "null" })
      .output();
  const sinkPort = freePort();
  const port = freePort();
  const sink = startSink(sinkPort);
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
        "inet_protocols = ipv4",
        "myhostname = relay.example.com",
        "mydestination =",
        "mynetworks = 127.0.0.0/8",
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "smtpd_error_sleep_time = 0",
        "local_recipient_maps =",
      ].join("\n") + "\n",
    );
    Deno.writeTextFileSync(`${dir}/master.cf`, referenceMasterCf(port));
    await run(["set-permissions"]);
    const start = await run(["start"]);
    if (!start.success) throw new Error("reference postfix did not start");
    const masterPid = () => Number(Deno.readTextFileSync(`${dir}/q/pid/master.pid`).trim());
    const readLog = () => {
      try {
        return Deno.readTextFileSync(`${dir}/maillog`);
      } catch {
        return "";
      }
    };
    for (let i = 0; i < 100 && !exists(`${dir}/q/pid/master.pid`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await measure(port, 20, 5, masterPid(), readLog);
    const f = await measure(port, count, sessions, masterPid(), readLog);
    print("reference Postfix", count, sessions, f);
  } finally {
    await run(["stop"]);
    sink.kill();
    await sink.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function referenceInstalled(): boolean {
  return exists("/usr/sbin/postfix") && Deno.uid() === 0 && uidOf("postfix") !== undefined;
}

/** Prints relay throughput, CPU and peak memory at 10 and 50 sessions. */
export async function bench(): Promise<void> {
  if (!exists(SINK) || !exists(SOURCE)) {
    console.log("relay: smtp-sink and smtp-source (the reference's test tools) are needed");
    return;
  }
  const count = Number(Deno.env.get("RELAY_BENCH_MESSAGES") ?? "2000");
  const sessionCounts = (Deno.env.get("RELAY_BENCH_SESSIONS") ?? "10,50").split(",").map(Number);
  for (const sessions of sessionCounts) {
    await posthornRun(count, sessions, true);
    await posthornRun(count, sessions, false);
    if (referenceInstalled()) {
      try {
        await referenceRun(count, sessions);
      } catch (err) {
        console.log(`relay: reference Postfix not measured: ${(err as Error).message}`);
      }
    } else {console.log(
        "relay: reference Postfix not measured (needs root and the postfix package)",
      );}
  }
}

if (import.meta.main) await bench();
