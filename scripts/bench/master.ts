// Master benchmark: an idle instance's memory (PSS summed over its processes
// from /proc/PID/smaps_rollup, and RSS) and process count, the time from
// `postfix start` to the first service answering, and the cost of starting
// an on-demand service (first request) against a warm one. Where the
// reference Postfix is installed and this runs as root, its master runs the
// same shape of instance (its smtpd in place of the echo test service) and
// its figures are printed beside.

import * as net from "node:net";
import { isBuilt } from "../../mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const launcher = `${root}tests/fixtures/daemons/launch.ts`;
const flags = ["run", "-A", "--unstable-ffi", "--unstable-net"];
const referenceMaster = "/usr/lib/postfix/sbin/master";

/** One column of the table. */
interface Figures {
  startMs: number;
  firstAnswerMs: number;
  idleProcs: number;
  idlePssMb: number;
  idleRssMb: number;
  masterPssMb: number;
  coldMs: number;
  warmMs: number;
}

function freePort(): number {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // Taken.
    }
  }
}

/** Connects, optionally sends a line, returns the first line received ("" on failure). */
function ask(opts: net.NetConnectOpts, line?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(opts, () => line !== undefined && s.write(line + "\n"));
    let text = "";
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on("data", (d) => {
      text += d;
      if (text.includes("\n")) s.destroy();
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(text.trim());
    });
    s.on("error", () => {});
  });
}

async function firstAnswer(opts: net.NetConnectOpts, line?: string): Promise<boolean> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (await ask(opts, line)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(e.name));
    } catch {
      // Gone.
    }
  }
  return out;
}

/** PSS and RSS in kB of one process. */
function memory(pid: number): { pss: number; rss: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { pss: field("Pss"), rss: field("Rss") };
}

function instanceMemory(
  master: number,
): Pick<Figures, "idleProcs" | "idlePssMb" | "idleRssMb" | "masterPssMb"> {
  const pids = [master, ...children(master)];
  let pss = 0;
  let rss = 0;
  for (const pid of pids) {
    const m = memory(pid);
    pss += m.pss;
    rss += m.rss;
  }
  return {
    idleProcs: pids.length,
    idlePssMb: pss / 1024,
    idleRssMb: rss / 1024,
    masterPssMb: memory(master).pss / 1024,
  };
}

function readPid(file: string): number {
  return parseInt(Deno.readTextFileSync(file).trim(), 10);
}

async function run(cmd: string, args: string[]): Promise<number> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  return out.code;
}

/** Posthorn: master, the echo test service on inet and unix, and the built wake-up services. */
async function posthorn(dir: string): Promise<Figures | undefined> {
  const port = freePort();
  const wakeups = [
    ["pickup", "pickup unix n - n 60 1 pickup"],
    ["cleanup", "cleanup unix n - n - 0 cleanup"],
    ["qmgr", "qmgr unix n - n 300 1 qmgr"],
  ].filter(([p]) => isBuilt(p)).map(([, line]) => line);
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    [
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${dir}/maillog`,
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      `posthorn_launcher = ${Deno.execPath()} ${flags.join(" ")} ${launcher}`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    [`${port} inet n - n - - echo`, "echo unix - - n - - echo", ...wakeups, ""].join("\n"),
  );
  const postfix = (command: string) =>
    run(Deno.execPath(), [...flags, launcher, "postfix", "-c", dir, command]);
  try {
    // Warm-up run: the first start of an instance run from source fills the
    // daemons' module cache (data_directory/deno); measure the steady state.
    if (await postfix("start") !== 0) return undefined;
    await firstAnswer({ host: "127.0.0.1", port }, "x");
    await ask({ path: `${dir}/queue/private/echo` }, "warm-up");
    await postfix("stop");
    const t0 = performance.now();
    if (await postfix("start") !== 0) return undefined;
    const started = performance.now();
    if (!await firstAnswer({ host: "127.0.0.1", port }, "x")) return undefined;
    const answered = performance.now();
    // Idle: the master, the inet service it starts with it and the wake-up
    // services, measured before any on-demand service runs.
    await new Promise((r) => setTimeout(r, 1500));
    const mem = instanceMemory(readPid(`${dir}/queue/pid/master.pid`));
    const path = `${dir}/queue/private/echo`;
    const c0 = performance.now();
    await ask({ path }, "cold");
    const c1 = performance.now();
    await ask({ path }, "warm");
    const c2 = performance.now();
    return {
      startMs: started - t0,
      firstAnswerMs: answered - t0,
      ...mem,
      coldMs: c1 - c0,
      warmMs: c2 - c1,
    };
  } finally {
    await postfix("stop");
  }
}

/** Postfix 3.7: master, postlogd, pickup, cleanup, qmgr and smtpd (with what it needs). */
async function reference(dir: string): Promise<Figures | undefined> {
  try {
    Deno.statSync(referenceMaster);
  } catch {
    return undefined;
  }
  if (Deno.uid() !== 0) return undefined;
  const port = freePort();
  const queue = `${dir}/q`;
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    [
      `queue_directory = ${queue}`,
      `data_directory = ${dir}/d`,
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      "compatibility_level = 3.6",
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    [
      "postlog unix-dgram n - n - 1 postlogd",
      `${port} inet n - n - - smtpd`,
      "pickup unix n - n 60 1 pickup",
      "cleanup unix n - n - 0 cleanup",
      "qmgr unix n - n 300 1 qmgr",
      "proxymap unix - - n - - proxymap",
      "rewrite unix - - n - - trivial-rewrite",
      "anvil unix - - n - 1 anvil",
      "",
    ].join("\n"),
  );
  for (
    const name of [
      "active",
      "bounce",
      "corrupt",
      "defer",
      "deferred",
      "flush",
      "hold",
      "incoming",
      "private",
      "saved",
      "trace",
      "maildrop",
      "public",
    ]
  ) {
    await Deno.mkdir(`${queue}/${name}`, { recursive: true });
    await run("chown", ["postfix", `${queue}/${name}`]);
  }
  await Deno.mkdir(`${queue}/pid`, { recursive: true });
  await Deno.mkdir(`${dir}/d`, { recursive: true });
  await run("chown", ["postfix", `${dir}/d`]);
  const t0 = performance.now();
  if (await run(referenceMaster, ["-c", dir, "-w"]) !== 0) return undefined;
  const started = performance.now();
  const master = readPid(`${queue}/pid/master.pid`);
  try {
    // Postfix starts smtpd on the first client: idle first, then the cold start.
    await new Promise((r) => setTimeout(r, 1500));
    const mem = instanceMemory(master);
    const c0 = performance.now();
    if (!await firstAnswer({ host: "127.0.0.1", port })) return undefined;
    const c1 = performance.now();
    await ask({ host: "127.0.0.1", port });
    const c2 = performance.now();
    return {
      startMs: started - t0,
      firstAnswerMs: started - t0 + (c1 - c0),
      ...mem,
      coldMs: c1 - c0,
      warmMs: c2 - c1,
    };
  } finally {
    try {
      Deno.kill(master, "SIGTERM");
    } catch {
      // Gone.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function row(label: string, a: number | undefined, b: number | undefined, digits: number): void {
  const cell = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(digits)).padStart(12);
  console.log(`${label.padEnd(44)}${cell(a)}${cell(b)}`);
}

/** Runs the benchmark and prints its figures. */
export async function bench(): Promise<void> {
  const mine = await Deno.makeTempDir({ prefix: "posthorn-bench-" });
  const theirs = await Deno.makeTempDir({ prefix: "postfix-bench-" });
  await Deno.chmod(mine, 0o755);
  await Deno.chmod(theirs, 0o755);
  try {
    const p = await posthorn(mine);
    const r = await reference(theirs);
    if (!p) console.log(`master: the Posthorn instance did not start; see ${mine}/maillog`);
    console.log(`${"".padEnd(44)}${"posthorn".padStart(12)}${"postfix 3.7".padStart(12)}`);
    row("postfix start returns (ms)", p?.startMs, r?.startMs, 0);
    row("first inet service answers (ms from start)", p?.firstAnswerMs, r?.firstAnswerMs, 0);
    row("idle instance: processes", p?.idleProcs, r?.idleProcs, 0);
    row("idle instance: PSS summed (MB; goal < 100)", p?.idlePssMb, r?.idlePssMb, 1);
    row("idle instance: RSS summed (MB)", p?.idleRssMb, r?.idleRssMb, 1);
    row("master alone: PSS (MB)", p?.masterPssMb, r?.masterPssMb, 1);
    row("on-demand service, first request (ms)", p?.coldMs, r?.coldMs, 0);
    row("same service, next request (ms)", p?.warmMs, r?.warmMs, 1);
    console.log(
      "posthorn idle = master + inet echo test service (started with the master) + built wake-up",
    );
    console.log(
      "services; postfix idle = master + postlogd + pickup + qmgr (its smtpd starts on demand).",
    );
    console.log("posthorn runs from source, after a warm-up start that fills its module cache.");
    if (!r) console.log("postfix 3.7: not measured (not installed, or not running as root)");
  } finally {
    await Deno.remove(mine, { recursive: true }).catch(() => {});
    await Deno.remove(theirs, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await bench();
