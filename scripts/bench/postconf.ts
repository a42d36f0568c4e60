// Benchmark: process time of `postconf -d` (every parameter) and `postconf -h
// NAME` (one), mean of N runs, through `deno run mod.ts postconf`, through the
// bundle (dist/posthorn.js, or $BENCH_BUNDLE) when it has been built, and the reference's
// /usr/sbin/postconf beside when installed. Each run is a whole process, as an
// administrator or a script pays for it.

const root = new URL("../../", import.meta.url).pathname;
const runs = Number(Deno.env.get("BENCH_RUNS") ?? 20);

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Mean wall time in milliseconds of `runs` runs of the command. */
async function mean(command: string, args: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const out = await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
    total += performance.now() - start;
    if (!out.success) throw new Error(`${command} ${args.join(" ")} exited ${out.code}`);
  }
  return total / runs;
}

/** Prints the postconf figures. */
export async function bench(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "bench-postconf-" });
  try {
    Deno.writeTextFileSync(`${dir}/main.cf`, "myhostname = mail.example.com\n");
    Deno.copyFileSync(
      `${root}tests/golden/postconf/fixtures/debian/master.cf`,
      `${dir}/master.cf`,
    );
    const deno = Deno.execPath();
    const flags = ["run", "-A", "--unstable-ffi", "--unstable-net"];
    const targets: [string, string, string[]][] = [
      ["posthorn (deno run mod.ts)", deno, [...flags, `${root}mod.ts`, "postconf"]],
    ];
    // BENCH_BUNDLE names another bundle to time (e.g. one built into a temporary folder).
    const bundle = Deno.env.get("BENCH_BUNDLE") ?? `${root}dist/posthorn.js`;
    if (exists(bundle)) {
      targets.push(["posthorn (bundle)", deno, [...flags, bundle, "postconf"]]);
    }
    if (exists("/usr/sbin/postconf")) {
      targets.push(["reference postconf", "/usr/sbin/postconf", []]);
    }
    for (const work of [["-d"], ["-h", "queue_directory"]]) {
      for (const [label, command, prefix] of targets) {
        const ms = await mean(command, [...prefix, "-c", dir, ...work]);
        console.log(
          `postconf ${work.join(" ").padEnd(18)} ${label.padEnd(28)} ${ms.toFixed(1)} ms ` +
            `(mean of ${runs})`,
        );
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
