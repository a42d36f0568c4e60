// postsuper(1): every operation on a copy of the reference's queue, the
// transcript compared with the reference's (golden), structure repair,
// purge, requeue through maildrop, and safety with other processes at work.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";
import {
  addMessage,
  emptyInstance,
  fillQueue,
  goldenDir,
  goldenInstance,
  queueFiles,
  type QueueInstance,
  removeInstance,
} from "../daemons/showq_fixture.ts";
import { readSubmission } from "../../lib/queue/maildrop.ts";
import { recordText } from "../../lib/queue/record.ts";
import { longQueueId, parseQueueId } from "../../lib/queue/id.ts";

function postsuper(inst: QueueInstance, args: string[], stdin?: string) {
  return runProgram("postsuper", ["-c", inst.configDir, ...args], { env: inst.env, stdin });
}

/** Files and modes, in the reference transcript's form. */
function fileModes(inst: QueueInstance): string[] {
  return queueFiles(inst)
    .filter((f) => /^(maildrop|incoming|active|deferred|hold|defer)\//.test(f))
    .map((f) => `${f} ${(Deno.statSync(`${inst.queueDir}/${f}`).mode! & 0o7777).toString(8)}`);
}

Deno.test("postsuper runs the golden command sequence exactly as the reference did", async () => {
  const inst = goldenInstance();
  try {
    Deno.mkdirSync(`${inst.queueDir}/bounce`, { recursive: true });
    const commands = Deno.readTextFileSync(`${goldenDir}postsuper.seq`).trim().split("\n");
    let transcript = "";
    for (const cmd of commands) {
      const got = await postsuper(inst, cmd.split(" "), "89066212712\n");
      transcript += `## ${cmd}\n${got.stderr}${got.stdout}status ${got.code}\n`;
    }
    transcript += fileModes(inst).join("\n") + "\n";
    assertEquals(transcript, Deno.readTextFileSync(`${goldenDir}postsuper.seq.ref`));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -d logs each removal to the maillog as postfix/postsuper[pid]", async () => {
  const inst = goldenInstance();
  try {
    const got = await postsuper(inst, ["-d", "D9F5C2121CE"]);
    assertEquals(got.stderr, "postsuper: D9F5C2121CE: removed\npostsuper: Deleted: 1 message\n");
    const log = Deno.readTextFileSync(inst.maillog);
    assertMatch(
      log,
      /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postfix\/postsuper\[\d+\]: D9F5C2121CE: removed$/m,
    );
    assertMatch(log, /postfix\/postsuper\[\d+\]: Deleted: 1 message$/m);
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -r requeues through maildrop as a submission pickup accepts", async () => {
  const inst = goldenInstance();
  try {
    const got = await postsuper(inst, ["-r", "950A9212232"]);
    assertEquals(got.stderr, "postsuper: 950A9212232: requeued\npostsuper: Requeued: 1 message\n");
    const files = queueFiles(inst);
    assert(!files.includes("deferred/9/950A9212232"));
    assert(!files.includes("defer/9/950A9212232"));
    const dropped = files.filter((f) => f.startsWith("maildrop/") && f !== "maildrop/19026212113");
    assertEquals(dropped.length, 1);
    const sub = readSubmission(`${inst.queueDir}/${dropped[0]}`);
    const byType = (t: string) => sub.records.filter((r) => r.type === t).map(recordText);
    assertEquals(byType("S"), ["mallory@example.com"]);
    assertEquals(byType("R"), [
      "ivan@remote.test",
      "judy@other.test",
      "ken@long.test",
      "oscar@other.test",
    ]);
    assert(byType("N").includes("Subject: mixed"));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -s renames files to match their inode, with their logs, and the listing stays", async () => {
  const inst = goldenInstance();
  try {
    const before = await runProgram("postqueue", ["-j"], { env: inst.env });
    const got = await postsuper(inst, ["-s"]);
    // tar gave every file a new inode: all nine short names are stale.
    assertEquals(
      got.stderr,
      "postsuper: Renamed to match inode number: 9 messages\n" +
        "postsuper: warning: QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS\n",
    );
    for (const f of queueFiles(inst).filter((f) => /^(incoming|active|deferred|hold)\//.test(f))) {
      const id = f.slice(f.lastIndexOf("/") + 1);
      assertEquals(parseQueueId(id)!.inode, Deno.statSync(`${inst.queueDir}/${f}`).ino, f);
    }
    const after = await runProgram("postqueue", ["-j"], { env: inst.env });
    const strip = (s: string) => s.replace(/"queue_id": "\w+", /g, "").split("\n").sort();
    assertEquals(strip(after.stdout), strip(before.stdout));
    assertStringIncludes(after.stdout, '"delay_reason": "greylisted for testing"');
    assertEquals((await postsuper(inst, ["-s"])).stderr, "");
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -s moves files to the hash folders in force and removes folders no longer used", async () => {
  const inst = emptyInstance("hash_queue_names = deferred, defer\nhash_queue_depth = 2\n");
  try {
    const id = addMessage(inst.layout, "deferred", "a@example.com", ["b@example.com"]);
    const flat = `${inst.queueDir}/deferred/${id}`;
    Deno.renameSync(`${inst.queueDir}/deferred/${id[0]}/${id}`, flat);
    assertEquals((await postsuper(inst, ["-s"])).code, 0);
    assert(queueFiles(inst).includes(`deferred/${id[0]}/${id[1]}/${id}`));
    Deno.writeTextFileSync(
      `${inst.configDir}/main.cf`,
      Deno.readTextFileSync(`${inst.configDir}/main.cf`) + "hash_queue_names = defer\n",
    );
    assertEquals((await postsuper(inst, ["-s"])).code, 0);
    assert(queueFiles(inst).includes(`deferred/${id}`));
    assertEquals([...Deno.readDirSync(`${inst.queueDir}/deferred`)].map((e) => e.name), [id]);
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -s renames long queue ids to short ones when long ids are off", async () => {
  const inst = emptyInstance("enable_long_queue_ids = no\n");
  try {
    const id = addMessage(inst.layout, "incoming", "a@example.com", ["b@example.com"]);
    const ino = Deno.statSync(`${inst.queueDir}/incoming/${id}`).ino!;
    const long = `4jYmpD3YgRz${"B".repeat(3)}`;
    Deno.renameSync(`${inst.queueDir}/incoming/${id}`, `${inst.queueDir}/incoming/${long}`);
    const got = await postsuper(inst, ["-s"]);
    assertEquals(
      got.stderr,
      "postsuper: Renamed to match inode number: 1 message\n" +
        "postsuper: warning: QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS\n",
    );
    const [name] = queueFiles(inst).filter((f) => f.startsWith("incoming/"));
    assertEquals(parseQueueId(name.slice(9)), {
      long: false,
      usec: parseQueueId(long)!.usec,
      inode: ino,
    });
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -p purges names that are not queue ids after a week and reports younger ones as bogus", async () => {
  const inst = emptyInstance();
  try {
    const id = addMessage(inst.layout, "incoming", "a@example.com", ["b@example.com"]);
    const old = `${inst.queueDir}/incoming/123456.789`;
    const week = `${inst.queueDir}/deferred/1/abc`;
    const fresh = `${inst.queueDir}/incoming/654321.987`;
    Deno.mkdirSync(`${inst.queueDir}/deferred/1`);
    for (const f of [old, week, fresh]) Deno.writeTextFileSync(f, "x");
    const age = (f: string, days: number) => {
      const t = new Date(Date.now() - days * 86400 * 1000);
      Deno.utimeSync(f, t, t);
    };
    age(old, 8);
    age(week, 6);
    const got = await postsuper(inst, ["-p"]);
    assertEquals(got.code, 0);
    assertEquals(got.stderr.split("\n").sort(), [
      "",
      "postsuper: warning: bogus file name: deferred/1/abc",
      "postsuper: warning: bogus file name: incoming/654321.987",
    ]);
    assertEquals(
      queueFiles(inst),
      ["deferred/1/abc", `incoming/${id}`, "incoming/654321.987"].sort(),
    );
    // -s reports the same names; a bare postsuper does -s and -p.
    assertEquals((await postsuper(inst, ["-s"])).stderr.split("\n").length, 3);
    age(week, 9);
    assertEquals(
      (await postsuper(inst, [])).stderr,
      "postsuper: warning: bogus file name: incoming/654321.987\n",
    );
  } finally {
    removeInstance(inst);
  }
});

Deno.test("concurrent postsuper -d ALL runs delete every message once between them, without errors", async () => {
  const inst = emptyInstance();
  try {
    fillQueue(inst.layout, "deferred", 300);
    const runs = await Promise.all([1, 2, 3].map(() => postsuper(inst, ["-d", "ALL"])));
    let total = 0;
    for (const run of runs) {
      assertEquals(run.code, 0);
      const m = /^postsuper: Deleted: (\d+) messages?\n$/.exec(run.stderr);
      assert(m, run.stderr);
      total += Number(m[1]);
    }
    assertEquals(total, 300);
    assertEquals(queueFiles(inst), []);
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -h ALL is safe while messages arrive and leave", async () => {
  const inst = emptyInstance();
  let run: ReturnType<typeof postsuper> | undefined;
  try {
    const first = fillQueue(inst.layout, "incoming", 200);
    run = postsuper(inst, ["-h", "ALL"]);
    // Meanwhile: new arrivals, and departures of messages postsuper may not have reached.
    const arrived: string[] = [];
    for (let i = 0; i < 100; i++) {
      arrived.push(addMessage(inst.layout, "incoming", "late@example.com", ["x@example.com"]));
      try {
        Deno.removeSync(`${inst.queueDir}/incoming/${first[i]}`);
      } catch {
        // Already moved to hold.
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    const got = await run;
    assertEquals(got.code, 0);
    const m = /^postsuper: Placed on hold: (\d+) messages?\n$/.exec(got.stderr);
    assert(m, got.stderr);
    const files = queueFiles(inst);
    // Every message is in exactly one place; the count matches what reached hold.
    assertEquals(files.filter((f) => f.startsWith("hold/")).length, Number(m[1]));
    const all = files.map((f) => f.slice(f.lastIndexOf("/") + 1));
    assertEquals(new Set(all).size, all.length);
    for (const id of arrived) assert(all.includes(id), id);
  } finally {
    await run; // Never remove the queue under a running postsuper.
    removeInstance(inst);
  }
});

Deno.test("postsuper stops at a missing queue folder with Postfix's scan_dir_push error", async () => {
  const inst = emptyInstance();
  try {
    Deno.removeSync(`${inst.queueDir}/bounce`);
    const got = await postsuper(inst, ["-p"]);
    assertEquals(got.code, 1);
    assertEquals(
      got.stderr,
      "postsuper: fatal: scan_dir_push: open directory bounce: No such file or directory\n",
    );
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper refuses a bad option or a missing argument with its usage", async () => {
  const inst = emptyInstance();
  try {
    const usage = "postsuper: fatal: usage: postsuper [-c config_dir] [-d queue_id (delete)] " +
      "[-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] " +
      "[-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] " +
      "[-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]\n";
    const bad = await postsuper(inst, ["-x"]);
    assertEquals([bad.code, bad.stderr], [1, "postsuper: invalid option -- 'x'\n" + usage]);
    const missing = await postsuper(inst, ["-h"]);
    assertEquals([missing.code, missing.stderr], [
      1,
      "postsuper: option requires an argument -- 'h'\n" + usage,
    ]);
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -S also checks long names against their inode; -s leaves them; -v tells", async () => {
  const inst = emptyInstance("enable_long_queue_ids = yes\n");
  try {
    const id = addMessage(inst.layout, "incoming", "a@example.com", ["b@example.com"]);
    const ino = Deno.statSync(`${inst.queueDir}/incoming/${id}`).ino!;
    const parts = parseQueueId(id)!;
    // The same time, another inode: a long name restored from elsewhere.
    const stale = longQueueId(parts.seconds ?? 1795535618, parts.usec, ino + 1);
    Deno.renameSync(`${inst.queueDir}/incoming/${id}`, `${inst.queueDir}/incoming/${stale}`);
    assertEquals((await postsuper(inst, ["-s"])).stderr, "");
    assert(queueFiles(inst).includes(`incoming/${stale}`));
    const got = await postsuper(inst, ["-v", "-S"]);
    const fixed = longQueueId(parts.seconds ?? 1795535618, parts.usec, ino);
    assertStringIncludes(got.stderr, `postsuper: ${stale}: renamed to ${fixed}\n`);
    assertStringIncludes(got.stderr, "postsuper: Renamed to match inode number: 1 message\n");
    assert(queueFiles(inst).includes(`incoming/${fixed}`));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postsuper -s after a hash layout change leaves the tree the reference leaves", async () => {
  const inst = goldenInstance();
  try {
    await postsuper(inst, ["-s"]);
    Deno.writeTextFileSync(
      `${inst.configDir}/main.cf`,
      "hash_queue_names = hold\nhash_queue_depth = 2\n",
      { append: true },
    );
    const got = await postsuper(inst, ["-s"]);
    const shape: string[] = [];
    const walk = (rel: string) => {
      const isDir = Deno.statSync(`${inst.queueDir}/${rel}`).isDirectory;
      shape.push(`${rel.replace(/[0-9A-F]{6,}/, "ID")} ${isDir ? "d" : "f"}`);
      if (isDir) {
        for (const e of Deno.readDirSync(`${inst.queueDir}/${rel}`)) walk(`${rel}/${e.name}`);
      }
    };
    for (const q of ["maildrop", "incoming", "active", "deferred", "defer", "hold"]) walk(q);
    assertEquals(
      got.stderr + shape.sort().join("\n") + "\n",
      Deno.readTextFileSync(`${goldenDir}postsuper.hash.ref`),
    );
  } finally {
    removeInstance(inst);
  }
});
