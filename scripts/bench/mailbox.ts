// Mailbox delivery figures: mbox appends per second (fcntl + dotlock, as
// mailbox_delivery_lock's default, fsync each), maildir deliveries per
// second, virtual(8) deliveries per second through a delivery session (queue
// file read, table lookups, maildir write, queue file marked), and postlock
// runs per second beside the reference's postlock.

import { splitContent } from "../../lib/deliver/message.ts";
import { deliverToMaildir, deliverToMbox } from "../../lib/mailbox/mod.ts";
import { DeliverySession } from "../../lib/deliver/agent.ts";
import { configFromText } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { queueFilePath } from "../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../daemons/qmgr/message.ts";
import { deliverVirtual, settingsFromConfig } from "../../daemons/virtual/mod.ts";
import { makeQueue, recordingBounce, writeMessage } from "../../tests/daemons/qmgr/helpers.ts";

const enc = new TextEncoder();

function sampleMessage() {
  const lines = ["From: a@example.com", "To: b@example.com", "Subject: bench", ""];
  for (let i = 0; i < 30; i++) lines.push(`line ${i} of a message of about two kilobytes ......`);
  lines.push("From here a line that needs quoting");
  return splitContent(lines.map((l) => enc.encode(l)));
}

function rate(n: number, ms: number): string {
  return `${Math.round(n / (ms / 1000))}/s`;
}

async function benchMbox(dir: string, n: number): Promise<void> {
  const content = sampleMessage();
  const path = `${dir}/mbox`;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await deliverToMbox({
      path,
      sender: "a@example.com",
      content,
      styles: ["fcntl", "dotlock"],
    });
    if (!r.ok) throw new Error(r.text);
  }
  console.log(
    `mbox append (fcntl+dotlock, fsync): ${n} in ${Math.round(performance.now() - start)} ms, ${
      rate(n, performance.now() - start)
    }`,
  );
}

function benchMaildir(dir: string, n: number): void {
  const content = sampleMessage();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const r = deliverToMaildir({ dir: `${dir}/Maildir/`, content });
    if (!r.ok) throw new Error(r.text);
  }
  console.log(
    `maildir delivery (fsync file and new/): ${n} in ${Math.round(performance.now() - start)} ms, ${
      rate(n, performance.now() - start)
    }`,
  );
}

async function benchVirtual(n: number): Promise<void> {
  const q = await makeQueue();
  const base = `${q.dir}/vmail`;
  Deno.mkdirSync(base);
  Deno.chmodSync(q.dir, 0o755);
  const uid = Deno.uid() ?? 0;
  const config = configFromText(
    q.dir,
    `virtual_mailbox_base = ${base}
virtual_mailbox_maps = inline:{ {user@example.net = user/} }
virtual_uid_maps = static:${uid === 0 ? 65534 : uid}
virtual_gid_maps = static:${uid === 0 ? 65534 : Deno.gid()}
virtual_minimum_uid = 1
`,
  );
  if (uid === 0) Deno.chownSync(base, 65534, 65534);
  const settings = settingsFromConfig(config);
  const bounce = recordingBounce();
  const ids = Array.from(
    { length: n },
    () => writeMessage(q, { recipients: ["user@example.net"] }, "active"),
  );
  const outcomes = new Map<string, number>();
  captureLog((l) => {
    const s = /status=(\w+ \([^)]*\))/.exec(l)?.[1];
    if (s) outcomes.set(s, (outcomes.get(s) ?? 0) + 1);
  });
  const start = performance.now();
  for (const id of ids) {
    const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
    const session = new DeliverySession({
      flags: 0,
      queueName: "active",
      queueId: id,
      dataOffset: msg.dataOffset,
      dataSize: msg.size,
      nexthop: "example.net",
      encoding: "",
      smtputf8: 0,
      sender: msg.sender,
      envid: "",
      ret: 0,
      arrival: msg.arrival,
      active: msg.arrival,
      attrs: {},
      recipients: msg.recipients,
    }, { layout: q.layout, bounce, resolution: 2 });
    await deliverVirtual(session, settings, q.layout);
    session.close();
  }
  const ms = performance.now() - start;
  captureLog(undefined);
  const sent = outcomes.get("sent (delivered to maildir)") ?? 0;
  if (sent !== n) console.log("virtual: not every delivery succeeded:", outcomes);
  console.log(
    `virtual deliveries to a maildir${uid === 0 ? " as another uid" : ""}: ${n} in ${
      Math.round(ms)
    } ms, ${rate(n, ms)}`,
  );
  Deno.removeSync(q.dir, { recursive: true });
}

async function timeRuns(cmd: string, args: string[], n: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    if (!out.success) throw new Error(`${cmd} failed`);
  }
  return performance.now() - start;
}

async function benchPostlock(dir: string, n: number): Promise<void> {
  Deno.mkdirSync(`${dir}/config`);
  Deno.writeTextFileSync(`${dir}/config/main.cf`, "");
  const args = ["-c", `${dir}/config`, `${dir}/locked`, "true"];
  const root = new URL("../../", import.meta.url).pathname;
  const ours = await timeRuns(
    Deno.execPath(),
    ["run", "-A", "--unstable-ffi", `${root}mod.ts`, "postlock", ...args],
    n,
  );
  let line = `postlock lock+run+unlock: ${rate(n, ours)} (${
    Math.round(ours / n)
  } ms each, runtime start included)`;
  try {
    Deno.statSync("/usr/sbin/postlock");
    const ref = await timeRuns("/usr/sbin/postlock", args, n);
    line += `; reference ${rate(n, ref)} (${(ref / n).toFixed(1)} ms each)`;
  } catch {
    // No reference installed.
  }
  console.log(line);
}

/** Prints mailbox delivery rates. */
export async function bench(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-bench-mailbox-" });
  try {
    await benchMbox(dir, 1000);
    benchMaildir(dir, 1000);
    await benchVirtual(500);
    await benchPostlock(dir, 10);
    console.log(
      "(the reference has no standalone mailbox writer; local/virtual run only under its master)",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
