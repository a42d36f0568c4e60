// pickup with a real cleanup: maildrop files in, queue files in incoming out,
// the maildrop file removed only after cleanup queued the message.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { decodeRecordAt, decodeRecords, encodeRecord } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import {
  incoming,
  type Instance,
  readLog,
  start,
  stop,
  waitGone,
  waitIncoming,
} from "./instance.ts";
import { MaildropWriter } from "../../../lib/queue/maildrop.ts";
import { ensureTestUser, testUser } from "../master/instance.ts";
import { passwdByName } from "../../../lib/queue/submitter.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";

const dec = new TextDecoder();
const golden = new URL("../../golden/queue/", import.meta.url).pathname;

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

Deno.test("pickup keeps a maildrop file while cleanup is unavailable, and queues it later", async () => {
  const inst = await start();
  try {
    const q = inst.layout.queueDirectory;
    // Take cleanup away: its socket is gone, as when the service is down.
    Deno.renameSync(`${q}/public/cleanup`, `${q}/public/cleanup.away`);
    const dropId = submit(inst, "alice@example.com", ["bob@example.com"], "Subject: later\n\nbody");
    await sendTrigger(`${q}/public/pickup`, "W");
    const log = await readLog(inst, "connect to subsystem");
    assertStringIncludes(
      log,
      "warning: connect to subsystem public/cleanup: No such file or directory",
    );
    Deno.statSync(`${q}/maildrop/${dropId}`);
    Deno.renameSync(`${q}/public/cleanup.away`, `${q}/public/cleanup`);
    await sendTrigger(`${q}/public/pickup`, "W");
    await waitIncoming(inst, 1);
    await waitGone(`${q}/maildrop/${dropId}`);
  } finally {
    await stop(inst);
  }
});

Deno.test({
  name: "pickup refuses a maildrop file from a user outside authorized_submit_users",
  ignore: Deno.uid() !== 0,
  async fn() {
    ensureTestUser();
    const uid = passwdByName(testUser)!.uid;
    const inst = await start("authorized_submit_users = root\n");
    try {
      // What a user can do without sendmail: write into the sticky maildrop directly.
      const dropId = submit(inst, "mallory@example.com", ["bob@example.com"], "Subject: x\n\nbody");
      const path = `${inst.layout.queueDirectory}/maildrop/${dropId}`;
      Deno.chownSync(path, uid, null);
      await sendTrigger(`${inst.layout.queueDirectory}/public/pickup`, "W");
      await waitGone(path);
      const log = await readLog(inst, "is not allowed to submit mail");
      assertStringIncludes(
        log,
        `warning: ${dropId}: uid=${uid}: User ${testUser}(${uid}) is not allowed to submit mail`,
      );
      assertEquals(incoming(inst), []);
      // Root's own submission still goes through.
      submit(inst, "root@example.com", ["bob@example.com"], "Subject: y\n\nbody");
      await sendTrigger(`${inst.layout.queueDirectory}/public/pickup`, "W");
      assertEquals((await waitIncoming(inst, 1)).length, 1);
    } finally {
      await stop(inst);
    }
  },
});
