// A queue tree with real cleanup and pickup daemons on it (-L sockets), for
// the pickup tests.

import { projectRoot } from "../../run.ts";
import { createQueueTree, type QueueLayout } from "../../../lib/queue/layout.ts";

/** A running instance. */
export interface Instance {
  dir: string;
  layout: QueueLayout;
  children: Deno.ChildProcess[];
}

export async function waitFor(path: string, ms = 10000): Promise<void> {
  for (let t = 0; t < ms; t += 25) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`${path} did not appear`);
}

export async function daemon(
  inst: Instance,
  program: string,
  listen: string,
  dir = program,
): Promise<void> {
  const script = `${inst.dir}/${dir}.ts`;
  await Deno.writeTextFile(
    script,
    `import { main } from "${projectRoot}daemons/${dir}/mod.ts";\n` +
      `Deno.exit(await main(Deno.args, { name: "${program}", program: "${program}" }));\n`,
  );
  inst.children.push(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-ffi", "--unstable-net", script, "-L", `unix:${listen}`],
      env: { MAIL_CONFIG: inst.dir },
      stdout: "null",
      stderr: "null",
    }).spawn(),
  );
  await waitFor(listen);
}

/** A queue tree with cleanup and pickup running on it. */
export async function start(mainCf: string | ((dir: string) => string) = ""): Promise<Instance> {
  const dir = await Deno.makeTempDir({ prefix: "pickup-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nmyhostname = ref.example.com\nmydomain = example.com\n` +
      `myorigin = $mydomain\nhash_queue_names =\nmail_name = Postfix\n` +
      `maillog_file = ${dir}/maillog\ncompatibility_level = 3.6\n` +
      (typeof mainCf === "string" ? mainCf : mainCf(dir)),
  );
  const inst: Instance = { dir, layout, children: [] };
  // cleanup asks trivial-rewrite for canonical forms, as in Postfix.
  await daemon(inst, "trivial-rewrite", `${dir}/queue/private/rewrite`, "trivial_rewrite");
  await daemon(inst, "cleanup", `${dir}/queue/public/cleanup`);
  await daemon(inst, "pickup", `${dir}/queue/public/pickup`);
  return inst;
}

export async function stop(inst: Instance): Promise<void> {
  for (const c of inst.children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // Gone.
    }
    await c.status;
  }
  await Deno.remove(inst.dir, { recursive: true });
}

export function incoming(inst: Instance): string[] {
  return [...Deno.readDirSync(`${inst.layout.queueDirectory}/incoming`)].map((e) => e.name);
}

export async function waitIncoming(inst: Instance, n: number): Promise<string[]> {
  for (let t = 0; t < 10000; t += 25) {
    const names = incoming(inst).filter((name) => {
      const mode = Deno.statSync(`${inst.layout.queueDirectory}/incoming/${name}`).mode! & 0o100;
      return mode !== 0;
    });
    if (names.length >= n) return names;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no queue file appeared in incoming");
}

export async function waitGone(path: string): Promise<void> {
  // Generous: on a loaded machine the daemons themselves take seconds to start.
  for (const end = Date.now() + 30_000; Date.now() < end;) {
    try {
      Deno.statSync(path);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} was not removed`);
}

export async function readLog(inst: Instance, part: string): Promise<string> {
  for (let t = 0; t < 5000; t += 25) {
    const log = await Deno.readTextFile(`${inst.dir}/maillog`).catch(() => "");
    if (log.includes(part)) return log;
    await new Promise((r) => setTimeout(r, 25));
  }
  return await Deno.readTextFile(`${inst.dir}/maillog`).catch(() => "");
}
