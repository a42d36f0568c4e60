// pickup with a real cleanup: maildrop files in, queue files in incoming out,
// the maildrop file removed only after cleanup queued the message.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { decodeRecordAt, decodeRecords, encodeRecord } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { createQueueTree, type QueueLayout } from "../../../lib/queue/layout.ts";
import { MaildropWriter } from "../../../lib/queue/maildrop.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";

const dec = new TextDecoder();
const golden = new URL("../../golden/queue/", import.meta.url).pathname;

interface Instance {
  dir: string;
  layout: QueueLayout;
  children: Deno.ChildProcess[];
}

async function waitFor(path: string, ms = 10000): Promise<void> {
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

async function daemon(inst: Instance, program: string, listen: string): Promise<void> {
  const script = `${inst.dir}/${program}.ts`;
  await Deno.writeTextFile(
    script,
    `import { main } from "${projectRoot}daemons/${program}/mod.ts";\n` +
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
async function start(mainCf = ""): Promise<Instance> {
  const dir = await Deno.makeTempDir({ prefix: "pickup-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nmyhostname = ref.example.com\nmydomain = example.com\n` +
      `myorigin = $mydomain\nhash_queue_names =\nmail_name = Postfix\n` +
      `maillog_file = ${dir}/maillog\ncompatibility_level = 3.6\n${mainCf}`,
  );
  const inst: Instance = { dir, layout, children: [] };
  await daemon(inst, "cleanup", `${dir}/queue/private/cleanup`);
  await daemon(inst, "pickup", `${dir}/queue/public/pickup`);
  return inst;
}

async function stop(inst: Instance): Promise<void> {
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

function incoming(inst: Instance): string[] {
  return [...Deno.readDirSync(`${inst.layout.queueDirectory}/incoming`)].map((e) => e.name);
}

async function waitIncoming(inst: Instance, n: number): Promise<string[]> {
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

async function waitGone(path: string): Promise<void> {
  for (let t = 0; t < 10000; t += 25) {
    try {
      Deno.statSync(path);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} was not removed`);
}

async function readLog(inst: Instance, part: string): Promise<string> {
  for (let t = 0; t < 5000; t += 25) {
    const log = await Deno.readTextFile(`${inst.dir}/maillog`).catch(() => "");
    if (log.includes(part)) return log;
    await new Promise((r) => setTimeout(r, 25));
  }
  return await Deno.readTextFile(`${inst.dir}/maillog`).catch(() => "");
}

/** Submits a message as sendmail does (lib/queue's maildrop writer). */
function submit(inst: Instance, sender: string, rcpts: string[], text: string): string {
  const w = new MaildropWriter(inst.layout);
  w.add("A", "rewrite_context=local");
  w.add("F", "");
  w.add("S", sender);
  for (const r of rcpts) w.add("R", r);
  w.add("M");
  for (const line of text.split("\n")) w.add("N", line);
  w.add("X");
  w.add("E");
  return w.commit();
}

Deno.test("pickup hands a maildrop file to cleanup, then removes it; logs uid= from=", async () => {
  const inst = await start();
  try {
    const dropId = submit(inst, "alice@example.com", ["bob@example.com"], "Subject: hi\n\nbody");
    await sendTrigger(`${inst.layout.queueDirectory}/public/pickup`, "W");
    const [id] = await waitIncoming(inst, 1);
    await waitGone(`${inst.layout.queueDirectory}/maildrop/${dropId}`);
    const recs = decodeRecords(readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`))
      .map((r) => `${r.type} ${dec.decode(r.data)}`);
    const uid = Deno.uid();
    assert(recs.includes(`N Received: by ref.example.com (Postfix, from userid ${uid})`));
    assert(recs.some((r) => r.startsWith(`N \tid ${id}; `)));
    assert(recs.includes("R bob@example.com"));
    const log = await readLog(inst, `${id}: message-id=`);
    assertStringIncludes(log, `${id}: uid=${uid} from=<alice@example.com>`);
    assertStringIncludes(log, `${id}: message-id=<`);
  } finally {
    await stop(inst);
  }
});

Deno.test("pickup and cleanup turn the reference's maildrop file into the reference's queue file", async () => {
  const inst = await start();
  try {
    const name = "5397D20C026";
    const path = `${inst.layout.queueDirectory}/maildrop/${name}`;
    Deno.copyFileSync(`${golden}simple.maildrop`, path);
    Deno.chmodSync(path, 0o740);
    Deno.utimeSync(path, 1795533859, 1795533859);
    await sendTrigger(`${inst.layout.queueDirectory}/public/pickup`, "W");
    const [id] = await waitIncoming(inst, 1);
    const norm = (buf: Uint8Array, qid: string) =>
      decodeRecords(buf).filter((r) => r.type !== "C").map((r) =>
        `${r.type} ${dec.decode(r.data)}`.replaceAll(qid, "QUEUEID")
          .replace(/^A create_time=\d+$/, "A create_time=T")
          .replace(/from userid \d+/, "from userid N")
      );
    assertEquals(
      norm(readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`), id),
      norm(Deno.readFileSync(`${golden}simple.hold`), name),
    );
  } finally {
    await stop(inst);
  }
});

Deno.test("pickup leaves an incomplete file alone and removes a file with a forbidden record", async () => {
  const inst = await start();
  try {
    const md = `${inst.layout.queueDirectory}/maildrop`;
    // Still being written: no execute bit.
    const w = new MaildropWriter(inst.layout);
    w.add("S", "a@example.com");
    const partial = w.path.slice(w.path.lastIndexOf("/") + 1);
    // A complete file holding a record type a submitter may not write (a content filter).
    const bad = submit(inst, "mallory@example.com", ["x@example.com"], "Subject: x\n\ny");
    const bytes = Deno.readFileSync(`${md}/${bad}`);
    const afterTime = decodeRecordAt(bytes, 0)!.next;
    const filter = encodeRecord("L", "smtp:evil");
    const forged = new Uint8Array(bytes.length + filter.length);
    forged.set(bytes.subarray(0, afterTime));
    forged.set(filter, afterTime);
    forged.set(bytes.subarray(afterTime), afterTime + filter.length);
    Deno.writeFileSync(`${md}/${bad}`, forged);
    await sendTrigger(`${inst.layout.queueDirectory}/public/pickup`, "W");
    await waitGone(`${md}/${bad}`);
    const log = await readLog(inst, "unexpected record type");
    assertStringIncludes(log, "unexpected record type: 76");
    Deno.statSync(`${md}/${partial}`);
    assertEquals(
      incoming(inst).filter((n) => {
        return (Deno.statSync(`${inst.layout.queueDirectory}/incoming/${n}`).mode! & 0o100) !== 0;
      }).length,
      0,
    );
    w.abandon();
  } finally {
    await stop(inst);
  }
});
