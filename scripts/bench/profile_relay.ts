// Profiling aid (not a benchmark: no bench() export, so `deno task bench`
// skips it): runs the relay path of scripts/bench/relay.ts with every daemon
// started under `deno run --cpu-prof`, sends N messages (PROFILE_MESSAGES,
// default 1000) over 20 sessions to smtp-sink, stops the instance so each
// daemon writes its profile, then prints, per program, the functions with
// the most self time (PROFILE_MAX_USE sets max_use). Usage:
//   deno run -A --unstable-ffi --unstable-net scripts/bench/profile_relay.ts [OUTDIR]
// The .cpuprofile files stay in OUTDIR (default a temporary folder) for a
// closer look in a profile viewer.

import { startRelayInstance } from "../../tests/daemons/smtp/relay_instance.ts";
import { freePort } from "../../tests/daemons/master/instance.ts";
import { projectRoot } from "../../tests/run.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const launcher = `${projectRoot}tests/daemons/smtp/launch.ts`;

/** Self time per function of one profile, in ms, with the total. */
function selfTimes(p: Profile): { total: number; byFn: Map<string, number> } {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const byFn = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = nodes.get(p.samples[i])!;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const f = n.callFrame;
    if (f.functionName === "(idle)" || f.functionName === "(program)") continue;
    const url = f.url.replace(/^file:\/\/.*?\/(lib|daemons|maps|tests)\//, "$1/");
    const key = `${f.functionName || "(anon)"} ${url}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + dt);
    total += dt;
  }
  return { total, byFn };
}

/** The program a profile belongs to, from the argv Deno recorded nowhere: guessed by its urls. */
function programOf(p: Profile): string {
  const urls = p.nodes.map((n) => n.callFrame.url).join(" ");
  const m = [...urls.matchAll(/daemons\/([a-z_]+)\//g)].map((x) => x[1]);
  const counts = new Map<string, number>();
  for (const d of m) counts.set(d, (counts.get(d) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "other";
}

async function main(): Promise<void> {
  const out = Deno.args[0] ?? await Deno.makeTempDir({ prefix: "posthorn-prof-" });
  await Deno.mkdir(out, { recursive: true });
  await Deno.chmod(out, 0o777);
  const count = Number(Deno.env.get("PROFILE_MESSAGES") ?? "1000");
  const sinkPort = freePort();
  const sink = new Deno.Command("/usr/sbin/smtp-sink", {
    args: [
      ...(Deno.uid() === 0 ? ["-u", "root"] : []),
      "-m",
      "1000",
      `127.0.0.1:${sinkPort}`,
      "256",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const flags = `run -A --unstable-ffi --unstable-net --cpu-prof --cpu-prof-dir=${out}`;
  const { inst, port } = await startRelayInstance(`[127.0.0.1]:${sinkPort}`, [
    `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
    // PROFILE_MAX_USE=10000 keeps each daemon alive through the run, so the
    // profiles show the per-message work rather than process starts.
    ...(Deno.env.get("PROFILE_MAX_USE") ? [`max_use = ${Deno.env.get("PROFILE_MAX_USE")}`] : []),
  ]);
  try {
    const t0 = performance.now();
    const src = await new Deno.Command("/usr/sbin/smtp-source", {
      args: [
        "-m",
        String(count),
        "-s",
        "20",
        "-f",
        "a@b.example",
        "-t",
        "c@far.example",
        `127.0.0.1:${port}`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!src.success) throw new Error("smtp-source failed");
    for (let i = 0; i < 6000; i++) {
      if ((inst.readLog().match(/ status=sent /g) ?? []).length >= count) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`profile: ${count} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await inst.postfix("stop");
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await inst.destroy();
    sink.kill();
    await sink.status;
  }
  const perProgram = new Map<string, { total: number; byFn: Map<string, number> }>();
  for await (const e of Deno.readDir(out)) {
    if (!e.name.endsWith(".cpuprofile")) continue;
    const p = JSON.parse(await Deno.readTextFile(`${out}/${e.name}`)) as Profile;
    const name = programOf(p);
    const s = selfTimes(p);
    const acc = perProgram.get(name) ?? { total: 0, byFn: new Map() };
    acc.total += s.total;
    for (const [k, v] of s.byFn) acc.byFn.set(k, (acc.byFn.get(k) ?? 0) + v);
    perProgram.set(name, acc);
  }
  const top = Number(Deno.env.get("PROFILE_TOP") ?? "25");
  for (const [name, acc] of [...perProgram].sort((a, b) => b[1].total - a[1].total)) {
    console.log(`== ${name}: ${acc.total.toFixed(0)} ms busy`);
    for (const [k, v] of [...acc.byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${v.toFixed(1).padStart(8)} ms  ${k}`);
    }
  }
  console.log(`profiles in ${out}`);
}

if (import.meta.main) await main();
