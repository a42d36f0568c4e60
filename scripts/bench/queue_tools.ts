// Benchmark: the queue tools on a queue of 10,000 messages. Prints the time
// and peak memory of `postqueue -p` (through a running showq service, and
// stand-alone with the mail system down) and of `postsuper -d ALL`; where
// the reference Postfix is installed and this runs as root, the reference's
// postqueue -p (stand-alone showq) and postsuper -d ALL on the same queue
// are measured beside them. The queue is written with lib/queue's writers.

import { emptyInstance, fillQueue, removeInstance } from "../../tests/daemons/showq_fixture.ts";

const root = new URL("../../", import.meta.url).pathname;
const count = 10000;
const deno = [Deno.execPath(), "run", "-A", "--unstable-ffi", "--unstable-net", `${root}mod.ts`];

/** Wall time and peak resident memory of one command (memory where GNU time is installed). */
interface Figure {
  seconds: number;
  maxKb?: number;
  lastLine: string;
}

const gnuTime = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile;
  } catch {
    return false;
  }
})();

async function measure(argv: string[], env: Record<string, string>): Promise<Figure> {
  const words = gnuTime ? ["/usr/bin/time", "-f", "%M", ...argv] : argv;
  const start = performance.now();
  const out = await new Deno.Command(words[0], {
    args: words.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - start) / 1000;
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr).trim().split("\n");
  const maxKb = gnuTime ? Number(stderr.pop()) : undefined;
  const text = dec.decode(out.stdout).trim() || stderr.join("\n").trim();
  const lastLine = out.success
    ? text.slice(text.lastIndexOf("\n") + 1)
    : `exit ${out.code}: ${text}`;
  return { seconds, maxKb, lastLine };
}

function print(label: string, f: Figure): void {
  const mem = f.maxKb ? `, peak RSS ${(f.maxKb / 1024).toFixed(0)} MB` : "";
  console.log(`${label}: ${f.seconds.toFixed(2)} s${mem}  [${f.lastLine}]`);
}

const haveReference = (() => {
  try {
    return Deno.uid() === 0 && Deno.statSync("/usr/sbin/postqueue").isFile;
  } catch {
    return false;
  }
})();

/**
 * The reference's programs run as mail_owner: they must be able to read the
 * queue and append to the maillog.
 */
function giveToPostfix(inst: { dir: string; queueDir: string; maillog: string }): void {
  Deno.chmodSync(inst.dir, 0o755);
  Deno.writeTextFileSync(inst.maillog, "", { append: true });
  new Deno.Command("chown", { args: ["-R", "postfix", inst.queueDir, inst.maillog] }).outputSync();
}

async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${path} did not appear`);
}

/** Peak resident memory of a running process (VmHWM), in KB. */
function peakKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the benchmark and prints its figures. */
export async function bench(): Promise<void> {
  const inst = emptyInstance();
  try {
    let start = performance.now();
    fillQueue(inst.layout, "deferred", count);
    console.log(
      `generated ${count} deferred messages in ${
        ((performance.now() - start) / 1000).toFixed(1)
      } s`,
    );
    const env = { ...inst.env, TZ: "UTC" };
    const postqueue = [...deno, "postqueue", "-c", inst.configDir, "-p"];

    // Through the service.
    const socket = `${inst.queueDir}/public/showq`;
    const showq = new Deno.Command(deno[0], {
      args: [...deno.slice(1), "showq", "-L", `unix:${socket}`],
      env,
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await waitFor(socket);
      await measure(postqueue, env); // warm the module cache
      print(
        `posthorn postqueue -p, ${count} messages, showq service`,
        await measure(postqueue, env),
      );
      const kb = peakKb(showq.pid);
      if (kb) console.log(`  showq service peak RSS ${(kb / 1024).toFixed(0)} MB`);
    } finally {
      showq.kill("SIGTERM");
      await showq.status;
      Deno.removeSync(socket);
    }
    print(`posthorn postqueue -p, ${count} messages, stand-alone`, await measure(postqueue, env));
    if (haveReference) {
      giveToPostfix(inst);
      print(
        `postfix  postqueue -p, ${count} messages, stand-alone`,
        await measure(["/usr/sbin/postqueue", "-c", inst.configDir, "-p"], env),
      );
    }

    print(
      `posthorn postsuper -d ALL, ${count} messages`,
      await measure([...deno, "postsuper", "-c", inst.configDir, "-d", "ALL"], env),
    );
    if (haveReference) {
      start = performance.now();
      fillQueue(inst.layout, "deferred", count);
      giveToPostfix(inst);
      print(
        `postfix  postsuper -d ALL, ${count} messages`,
        await measure(["/usr/sbin/postsuper", "-c", inst.configDir, "-d", "ALL"], env),
      );
    }
  } finally {
    removeInstance(inst);
  }
}

if (import.meta.main) await bench();
