// Benchmark: lookup tables. Build time of 100k- and 1M-entry hash and cdb
// tables with `postmap`, lookups per second in process (the maps/ API) and
// through `postmap -q -` (one process, many keys), and single `postmap -q`
// processes per second. Where the reference Postfix is installed, its
// figure for the same work is printed beside Posthorn's.

import { openMap } from "../../maps/mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const reference = "/usr/sbin/postmap";

function haveReference(): boolean {
  try {
    return Deno.statSync(reference).isFile;
  } catch {
    return false;
  }
}

/** Runs a command with optional input; returns the seconds it took. */
async function timed(
  cmd: string,
  args: string[],
  cwd: string,
  stdin?: Uint8Array,
): Promise<number> {
  const start = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: stdin ? "piped" : "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  if (out.code > 1) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (performance.now() - start) / 1000;
}

/** The Posthorn postmap command line (deno run mod.ts postmap ...). */
function posthorn(args: string[]): [string, string[]] {
  return [Deno.execPath(), ["run", "-A", `${root}mod.ts`, "postmap", ...args]];
}

function source(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(`user${i}@example${i % 1000}.com\trelay:[mx${i % 97}.example.net]:25\n`);
  }
  return parts.join("");
}

function keys(n: number, count: number): Uint8Array {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = (i * 7919) % (n * 2); // half of them hit
    parts.push(`user${k}@example${k % 1000}.com\n`);
  }
  return new TextEncoder().encode(parts.join(""));
}

const fmt = (x: number, digits = 0) => x.toLocaleString("en-US", { maximumFractionDigits: digits });

function line(label: string, ours: string, ref?: string): void {
  console.log(`${label.padEnd(44)} posthorn ${ours.padEnd(24)}${ref ? ` reference ${ref}` : ""}`);
}

async function buildFigures(dir: string, n: number, type: string, ref: boolean): Promise<void> {
  const file = `src${n}`;
  const [cmd, args] = posthorn(["-c", dir, `${type}:${file}`]);
  const ours = await timed(cmd, args, dir);
  const theirs = ref ? await timed(reference, ["-c", `${dir}/ref`, `${type}:ref/${file}`], dir) : 0;
  const per = (s: number) => `${fmt(s, 2)} s (${fmt((s / n) * 1e6, 2)} µs/entry)`;
  line(`build ${type}, ${fmt(n)} entries`, per(ours), ref ? per(theirs) : undefined);
}

async function inProcessLookups(dir: string, n: number, type: string): Promise<void> {
  const dict = openMap(`${type}:${dir}/src${n}`);
  const probe = new TextDecoder().decode(keys(n, 200_000)).split("\n").filter(Boolean);
  const start = performance.now();
  for (const k of probe) await dict.lookup(k);
  const secs = (performance.now() - start) / 1000;
  await dict.close();
  line(`in-process lookups, ${type}, ${fmt(n)} entries`, `${fmt(probe.length / secs)} /s`);
}

async function streamLookups(dir: string, n: number, type: string, ref: boolean): Promise<void> {
  const count = 100_000;
  const input = keys(n, count);
  const [cmd, args] = posthorn(["-c", dir, "-q", "-", `${type}:src${n}`]);
  const ours = await timed(cmd, args, dir, input);
  const theirs = ref
    ? await timed(reference, ["-c", `${dir}/ref`, "-q", "-", `${type}:ref/src${n}`], dir, input)
    : 0;
  line(
    `postmap -q - (${fmt(count)} keys), ${type}, ${fmt(n)}`,
    `${fmt(count / ours)} /s`,
    ref ? `${fmt(count / theirs)} /s` : undefined,
  );
}

async function processLookups(dir: string, n: number, type: string, ref: boolean): Promise<void> {
  const runs = 20;
  let ours = 0, theirs = 0;
  for (let i = 0; i < runs; i++) {
    const key = `user${i * 31}@example${(i * 31) % 1000}.com`;
    const [cmd, args] = posthorn(["-c", dir, "-q", key, `${type}:src${n}`]);
    ours += await timed(cmd, args, dir);
    if (ref) {
      theirs += await timed(reference, ["-c", `${dir}/ref`, "-q", key, `${type}:ref/src${n}`], dir);
    }
  }
  line(
    `postmap -q processes, ${type}, ${fmt(n)}`,
    `${fmt(runs / ours, 1)} /s (${fmt((ours / runs) * 1000, 1)} ms each)`,
    ref ? `${fmt(runs / theirs, 1)} /s (${fmt((theirs / runs) * 1000, 1)} ms each)` : undefined,
  );
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const ref = haveReference();
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-bench-maps-" });
  try {
    Deno.mkdirSync(`${dir}/ref`);
    for (const d of [dir, `${dir}/ref`]) {
      Deno.writeTextFileSync(`${d}/main.cf`, "myhostname = bench.example.com\n");
      // Postfix waits for a main.cf younger than a few seconds to age.
      const old = new Date(Date.now() - 3600_000);
      Deno.utimeSync(`${d}/main.cf`, old, old);
    }
    for (const n of [100_000, 1_000_000]) {
      const text = source(n);
      Deno.writeTextFileSync(`${dir}/src${n}`, text);
      if (ref) Deno.writeTextFileSync(`${dir}/ref/src${n}`, text);
    }
    if (!ref) console.log("(reference /usr/sbin/postmap not installed: Posthorn figures only)");
    for (const type of ["hash", "cdb"]) {
      for (const n of [100_000, 1_000_000]) {
        await buildFigures(dir, n, type, ref);
        await inProcessLookups(dir, n, type);
        await streamLookups(dir, n, type, ref);
      }
      await processLookups(dir, 100_000, type, ref);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
