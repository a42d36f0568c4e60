import { assertEquals, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";
import { makeInstance, removeInstance } from "./queue_instance.ts";

Deno.test("postkick writes the request to public/NAME", async () => {
  const inst = makeInstance();
  const fifo = `${inst.queueDir}/public/pickup`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const reader = Deno.open(fifo, { read: true });
  const run = runProgram("postkick", ["public", "pickup", "W"], { env: inst.env });
  const file = await reader;
  const buf = new Uint8Array(8);
  const n = await file.read(buf);
  file.close();
  assertEquals((await run).code, 0);
  assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "W");
  removeInstance(inst);
});

Deno.test("postkick reaches a unix socket under private/", async () => {
  const inst = makeInstance();
  const listener = Deno.listen({ transport: "unix", path: `${inst.queueDir}/private/qmgr` });
  const accepted = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(8);
    const n = await conn.read(buf);
    conn.close();
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  })();
  const r = await runProgram("postkick", ["-c", inst.configDir, "private", "qmgr", "I"], {});
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await accepted, "I");
  listener.close();
  removeInstance(inst);
});

Deno.test("postkick reports a missing or dead service as Postfix does", async () => {
  const inst = makeInstance();
  const missing = await runProgram("postkick", ["public", "nosuch", "W"], { env: inst.env });
  assertEquals(missing.code, 1);
  assertEquals(
    missing.stderr,
    "postkick: warning: unable to look up public/nosuch: No such file or directory\n" +
      "postkick: warning: Cannot contact class public service nosuch - perhaps the mail system is down\n",
  );
  // A fifo nobody reads is a service that is down.
  await new Deno.Command("mkfifo", { args: [`${inst.queueDir}/public/pickup`] }).output();
  const dead = await runProgram("postkick", ["public", "pickup", "W"], { env: inst.env });
  assertEquals(dead.code, 1);
  assertEquals(
    dead.stderr,
    "postkick: warning: Cannot contact class public service pickup - perhaps the mail system is down\n",
  );
  const usage = await runProgram("postkick", ["public"], { env: inst.env });
  assertEquals(usage.code, 1);
  assertStringIncludes(
    usage.stderr,
    "postkick: fatal: usage: postkick [-c config_dir] [-v] class service request",
  );
  removeInstance(inst);
});
