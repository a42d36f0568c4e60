// Benchmark: local submission into the maildrop queue. Prints sendmail's
// start-up-and-submit time per message (one process per message, as a
// script calling sendmail pays it), submissions per second that way and
// through the maildrop writer in process, each with fsync. Where the
// reference Postfix is installed and this runs as root, the reference's
// sendmail (and its setgid postdrop) submits into a throwaway maildrop of
// its own for the figure beside Posthorn's.

import { createQueueTree } from "../../lib/queue/layout.ts";
import { MaildropWriter } from "../../lib/queue/maildrop.ts";

const root = new URL("../../", import.meta.url).pathname;
const enc = new TextEncoder();
const message = enc.encode(
  "From: alice@example.com\nTo: bob@example.com\nSubject: benchmark\n\n" +
    "The quick brown fox jumps over the lazy dog.\n".repeat(40),
);

function instance(): { dir: string; configDir: string; queueDir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-bench-queue-" });
  Deno.chmodSync(dir, 0o755);
  const configDir = `${dir}/etc`;
  const queueDir = `${dir}/queue`;
  Deno.mkdirSync(configDir);
  Deno.writeTextFileSync(`${configDir}/main.cf`, `queue_directory = ${queueDir}\n`);
  return { dir, configDir, queueDir };
}

/** Runs `command args` `count` times with the message on stdin; mean milliseconds per run. */
async function timeRuns(
  command: string,
  args: string[],
  env: Record<string, string>,
  count: number,
): Promise<number> {
  const once = async () => {
    const child = new Deno.Command(command, {
      args,
      env,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(message);
    await w.close();
    const out = await child.output();
    if (out.code !== 0) throw new Error(`${command}: ${new TextDecoder().decode(out.stderr)}`);
  };
  await once(); // warm the module cache
  const start = performance.now();
  for (let i = 0; i < count; i++) await once();
  return (performance.now() - start) / count;
}

function line(label: string, ms: number): void {
  console.log(`${label}: ${ms.toFixed(1)} ms per message, ${(1000 / ms).toFixed(0)} msg/s`);
}

async function posthornSendmail(count: number): Promise<void> {
  const inst = instance();
  createQueueTree({ queueDirectory: inst.queueDir, hashQueueNames: [], hashQueueDepth: 1 });
  const args = [
    "run",
    "-A",
    "--unstable-ffi",
    "--unstable-net",
    `${root}mod.ts`,
    "sendmail",
    "-f",
    "alice@example.com",
    "bob@example.com",
  ];
  const ms = await timeRuns(Deno.execPath(), args, { MAIL_CONFIG: inst.configDir }, count);
  line("posthorn sendmail (deno run mod.ts), start-up and submit", ms);
  // The same program without mod.ts's dispatch table, whose literal dynamic
  // imports make Deno load every program's module graph at start-up.
  const entry = `${inst.dir}/sendmail_entry.ts`;
  Deno.writeTextFileSync(
    entry,
    `import { main } from "${root}cmd/sendmail.ts";\n` +
      `Deno.exit(await main(Deno.args, { name: "sendmail", program: "sendmail" }));\n`,
  );
  const direct = await timeRuns(
    Deno.execPath(),
    ["run", "-A", "--unstable-ffi", "--unstable-net", entry, ...args.slice(6)],
    { MAIL_CONFIG: inst.configDir },
    count,
  );
  line("posthorn sendmail (direct entry, no dispatch table), start-up and submit", direct);
  const launcher = `${root}dist/posthorn`;
  if (exists(launcher)) {
    const bundled = await timeRuns(
      launcher,
      ["sendmail", "-f", "alice@example.com", "bob@example.com"],
      { MAIL_CONFIG: inst.configDir },
      count,
    );
    line("posthorn sendmail (dist/posthorn bundle), start-up and submit", bundled);
  }
  Deno.removeSync(inst.dir, { recursive: true });
}

function inProcess(): void {
  const inst = instance();
  const layout = { queueDirectory: inst.queueDir, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  const lines = new TextDecoder().decode(message).split("\n").map((l) => enc.encode(l));
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < 1500) {
    const w = new MaildropWriter(layout);
    w.add("A", "rewrite_context=local");
    w.add("F", "Alice");
    w.add("S", "alice@example.com");
    w.add("R", "bob@example.com");
    w.add("M");
    for (const l of lines) w.addText("N", l);
    w.add("X");
    w.add("E");
    w.commit();
    count++;
  }
  line("maildrop writer in process (fsync per file)", (performance.now() - start) / count);
  Deno.removeSync(inst.dir, { recursive: true });
}

/** The reference's sendmail into a maildrop made with Postfix's owners and modes. */
async function referenceSendmail(count: number): Promise<void> {
  if (!exists("/usr/sbin/sendmail") || !exists("/usr/sbin/postdrop") || Deno.uid() !== 0) {
    console.log("reference sendmail: not measured (needs the reference installed and root)");
    return;
  }
  const inst = instance();
  const ids = await userIds();
  if (!ids) {
    console.log("reference sendmail: not measured (no postfix user or postdrop group)");
    return;
  }
  Deno.mkdirSync(`${inst.queueDir}/maildrop`, { recursive: true });
  Deno.mkdirSync(`${inst.queueDir}/public`);
  Deno.chownSync(`${inst.queueDir}/maildrop`, ids.postfix, ids.postdrop);
  Deno.chmodSync(`${inst.queueDir}/maildrop`, 0o1730);
  Deno.writeTextFileSync(
    `${inst.configDir}/main.cf`,
    `queue_directory = ${inst.queueDir}\nmail_owner = postfix\nsetgid_group = postdrop\n` +
      `compatibility_level = 3.6\n`,
  );
  try {
    const ms = await timeRuns(
      "/usr/sbin/sendmail",
      ["-f", "alice@example.com", "bob@example.com"],
      { MAIL_CONFIG: inst.configDir },
      count,
    );
    line("reference sendmail + postdrop, start-up and submit", ms);
  } catch (err) {
    console.log(`reference sendmail: not measured (${(err as Error).message.trim()})`);
  }
  Deno.removeSync(inst.dir, { recursive: true });
}

async function userIds(): Promise<{ postfix: number; postdrop: number } | null> {
  const id = async (args: string[]) => {
    const out = await new Deno.Command("id", { args, stdout: "piped", stderr: "null" }).output();
    return out.code === 0 ? Number(new TextDecoder().decode(out.stdout).trim()) : NaN;
  };
  const postfix = await id(["-u", "postfix"]);
  const group = await new Deno.Command("getent", { args: ["group", "postdrop"], stdout: "piped" })
    .output();
  const postdrop = Number(new TextDecoder().decode(group.stdout).split(":")[2]);
  return Number.isNaN(postfix) || Number.isNaN(postdrop) ? null : { postfix, postdrop };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const count = 20;
  await posthornSendmail(count);
  inProcess();
  await referenceSendmail(count);
}

if (import.meta.main) await bench();
