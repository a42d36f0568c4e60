// Master benchmark: an idle instance's memory (PSS summed over its processes
// from /proc/PID/smaps_rollup, and RSS) and process count, the time from
// `postfix start` to the first service answering, and the cost of starting
// an on-demand service (first request) against a warm one.

import * as net from "node:net";
import { isBuilt } from "../../mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const launcher = `${root}tests/fixtures/daemons/launch.ts`;
const flags = ["run", "-A", "--unstable-ffi", "--unstable-net"];

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

function ask(opts: net.NetConnectOpts, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(opts, () => s.write(line + "\n"));
    let text = "";
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on("data", (d) => {
      text += d;
      if (text.includes("\n")) s.end();
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(text.trim());
    });
    s.on("error", () => {});
  });
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) {
        out.push(Number(e.name));
      }
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

async function postfix(dir: string, command: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...flags, launcher, "postfix", "-c", dir, command],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.code;
}

/** Runs the benchmark and prints its figures. */
export async function bench(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-bench-" });
  await Deno.chmod(dir, 0o755);
  const port = freePort();
  const builtServices = [
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
      ...(Deno.uid() === 0 &&
          !new Deno.Command("id", { args: ["postfix"], stdout: "null", stderr: "null" })
            .outputSync().success
        ? ["mail_owner = nobody"]
        : []),
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    [`${port} inet n - n - - echo`, "echo unix - - n - - echo", ...builtServices, ""].join("\n"),
  );
  try {
    const t0 = performance.now();
    if (await postfix(dir, "start") !== 0) {
      console.log("master: postfix start failed; see", `${dir}/maillog`);
      return;
    }
    const started = performance.now();
    let reply = "";
    while (!reply && performance.now() - t0 < 30_000) {
      reply = await ask({ host: "127.0.0.1", port }, "x");
    }
    const answered = performance.now();
    console.log(`postfix start returned after          ${(started - t0).toFixed(0)} ms`);
    console.log(
      `first inet service answered after     ${(answered - t0).toFixed(0)} ms (from postfix start)`,
    );

    // Idle instance: the master, the inet service it starts with it and the
    // wake-up services, measured before any on-demand service runs.
    await new Promise((r) => setTimeout(r, 1500));
    const master = parseInt(Deno.readTextFileSync(`${dir}/queue/pid/master.pid`).trim(), 10);
    const pids = [master, ...children(master)];
    let pss = 0;
    let rss = 0;
    for (const pid of pids) {
      const m = memory(pid);
      pss += m.pss;
      rss += m.rss;
    }
    const m = memory(master);
    console.log(
      `instance processes                    ${pids.length} (master + ${pids.length - 1} daemons)`,
    );
    console.log(
      `instance memory, PSS summed           ${(pss / 1024).toFixed(1)} MB (goal: under 100 MB)`,
    );
    console.log(`instance memory, RSS summed           ${(rss / 1024).toFixed(1)} MB`);
    console.log(
      `master alone, PSS / RSS               ${(m.pss / 1024).toFixed(1)} / ${
        (m.rss / 1024).toFixed(1)
      } MB`,
    );

    const path = `${dir}/queue/private/echo`;
    const c0 = performance.now();
    await ask({ path }, "cold");
    const c1 = performance.now();
    await ask({ path }, "warm");
    const c2 = performance.now();
    console.log(
      `on-demand service, first request      ${(c1 - c0).toFixed(0)} ms (process start included)`,
    );
    console.log(`same service, next request            ${(c2 - c1).toFixed(1)} ms`);

    console.log(
      "reference Postfix: not measured (its master needs a system-wide /etc/postfix/main.cf here)",
    );
  } finally {
    await postfix(dir, "stop");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await bench();
