// Benchmark: messages per second through the cleanup core, in process (no
// sockets, no files): a small message and a 100 KB one, with default
// settings and with header/body checks; then the pipeline: maildrop files
// through running pickup, cleanup and trivial-rewrite daemons into incoming.
// No reference figure: the reference's cleanup has no in-process mode, and
// its pickup, run the same way without a queue manager, took one file per
// second here, which measures its pacing rather than its work.

import { configFromText } from "../../lib/config/mod.ts";
import { encodeRecord } from "../../lib/queue/record.ts";
import { type InputRecord, processMessage } from "../../daemons/cleanup/core.ts";
import { defaultFlags, settingsFrom } from "../../daemons/cleanup/settings.ts";
import type { CleanupTables } from "../../daemons/cleanup/tables.ts";
import { createQueueTree } from "../../lib/queue/layout.ts";
import { MaildropWriter } from "../../lib/queue/maildrop.ts";
import { sendTrigger } from "../../lib/ipc/trigger.ts";

const enc = new TextEncoder();

function records(bodyBytes: number): InputRecord[] {
  const r = (type: string, data = "") => ({ type, data: enc.encode(data) });
  const out = [
    r("T", "1795533859 0"),
    r("A", "rewrite_context=local"),
    r("F", "Alice"),
    r("S", "alice"),
    r("R", "bob@example.com"),
    r("R", "carol"),
    r("M"),
    r("N", "From: Alice <alice>"),
    r("N", "To: bob@example.com, Carol <carol>"),
    r("N", "Subject: benchmark"),
    r("N", ""),
  ];
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  for (let n = 0; n < bodyBytes; n += line.length + 1) out.push(r("N", line));
  out.push(r("X"), r("E"));
  return out;
}

async function measure(label: string, input: InputRecord[], tables: CleanupTables) {
  const config = configFromText("/nonexistent", "myhostname = bench.example.com\n");
  const settings = settingsFrom(config);
  const log = { info: () => {}, warn: () => {} };
  const bytes = input.reduce((n, r) => n + encodeRecord(r.type, r.data).length, 0);
  const once = () =>
    processMessage(input, { queueId: "BENCH1", flags: defaultFlags, settings, tables, log });
  for (let i = 0; i < 20; i++) await once();
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < 1500) {
    await once();
    count++;
  }
  const secs = (performance.now() - start) / 1000;
  const rate = count / secs;
  console.log(
    `cleanup core, ${label}: ${rate.toFixed(0)} msg/s, ${(rate * bytes / 1e6).toFixed(1)} MB/s ` +
      `(${bytes} bytes per message)`,
  );
}

const root = new URL("../../", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drops `count` messages of `bodyBytes` into a maildrop (as sendmail does). */
function fillMaildrop(queueDirectory: string, count: number, bodyBytes: number, mode: number) {
  const layout = { queueDirectory, hashQueueNames: [], hashQueueDepth: 1 };
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  for (let i = 0; i < count; i++) {
    const w = new MaildropWriter(layout);
    w.add("A", "rewrite_context=local");
    w.add("F", "Bench");
    w.add("S", "bench@example.com");
    w.add("R", "rcpt@example.com");
    w.add("M");
    w.add("N", `Subject: bench ${i}`);
    w.add("N", "");
    for (let n = 0; n < bodyBytes; n += line.length + 1) w.add("N", line);
    w.add("X");
    w.add("E");
    w.commit();
    Deno.chmodSync(w.path, mode);
  }
}

/** Waits until `count` complete files are in incoming; returns the seconds it took. */
async function waitQueued(queueDirectory: string, count: number, started: number) {
  for (;;) {
    let done = 0;
    for (const e of Deno.readDirSync(`${queueDirectory}/incoming`)) {
      try {
        if ((Deno.statSync(`${queueDirectory}/incoming/${e.name}`).mode ?? 0) & 0o100) done++;
      } catch {
        // A temporary name, renamed meanwhile.
      }
    }
    if (done >= count) return (performance.now() - started) / 1000;
    if (performance.now() - started > 120_000) throw new Error("pipeline did not finish");
    await sleep(20);
  }
}

/** Posthorn's pickup, cleanup and trivial-rewrite daemons on a fresh instance. */
async function posthornPipeline(count: number, bodyBytes: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "bench-cleanup-" });
  const queue = `${dir}/queue`;
  createQueueTree({ queueDirectory: queue, hashQueueNames: [], hashQueueDepth: 1 });
  Deno.writeTextFileSync(
    `${dir}/main.cf`,
    `queue_directory = ${queue}\nmyhostname = bench.example.com\nhash_queue_names =\n` +
      `compatibility_level = 3.6\nmaillog_file = ${dir}/maillog\n`,
  );
  const children: Deno.ChildProcess[] = [];
  const start = async (module: string, name: string, socket: string) => {
    const script = `${dir}/${module}.ts`;
    Deno.writeTextFileSync(
      script,
      `import { main } from "${root}daemons/${module}/mod.ts";\n` +
        `Deno.exit(await main(Deno.args, { name: "${name}", program: "${name}" }));\n`,
    );
    children.push(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-ffi", "--unstable-net", script, "-L", `unix:${socket}`],
        env: { MAIL_CONFIG: dir },
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
    while (!exists(socket)) await sleep(20);
  };
  const sink = qmgrSink(`${queue}/public/qmgr`);
  try {
    await start("trivial_rewrite", "trivial-rewrite", `${queue}/private/rewrite`);
    await start("cleanup", "cleanup", `${queue}/private/cleanup`);
    await start("pickup", "pickup", `${queue}/public/pickup`);
    fillMaildrop(queue, count, bodyBytes, 0o740);
    const started = performance.now();
    await sendTrigger(`${queue}/public/pickup`, "W");
    return count / await waitQueued(queue, count, started);
  } finally {
    sink.close();
    for (const c of children) {
      c.kill("SIGKILL");
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

/** A stand-in for qmgr's public socket that takes wake-ups and drops them (the pipeline ends in incoming). */
function qmgrSink(path: string): Deno.UnixListener {
  const listener = Deno.listen({ transport: "unix", path });
  Deno.chmodSync(path, 0o666);
  (async () => {
    for await (const conn of listener) {
      // Read the wake-up, then hang up: the client waits for the close.
      conn.read(new Uint8Array(64)).catch(() => null).finally(() => conn.close());
    }
  })().catch(() => {});
  return listener;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function pipeline(label: string, count: number, bodyBytes: number): Promise<void> {
  const rate = await posthornPipeline(count, bodyBytes);
  console.log(`pickup+cleanup daemons, maildrop to incoming, ${label}: ${rate.toFixed(0)} msg/s`);
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const checks: CleanupTables = {
    headerChecks: (l) => Promise.resolve(/^Subject: viagra/i.test(l) ? "REJECT" : undefined),
    bodyChecks: (l) => Promise.resolve(/casino/.test(l) ? "REJECT" : undefined),
  };
  await measure("small message", records(200), {});
  await measure("100 KB message", records(100 * 1024), {});
  await measure("small message, header+body checks", records(200), checks);
  await measure("100 KB message, header+body checks", records(100 * 1024), checks);
  await pipeline("500 small messages", 500, 200);
  await pipeline("100 messages of 100 KB", 100, 100 * 1024);
}

if (import.meta.main) await bench();
