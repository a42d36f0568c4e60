// Service types and master.cf columns beyond the basics: unix-dgram, inet
// on several interfaces, the process limit, conditional wake-ups, a service
// removed by reload, and postfix abort.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { sendDatagram } from "../../../lib/ffi/libc.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";
import { alive, ask, freePort, Instance, serviceProcs, waitFor } from "./instance.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function readLines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l);
  } catch {
    return [];
  }
}

Deno.test("master: a unix-dgram service receives datagrams", opts, async () => {
  const inst = await Instance.create("dlog unix-dgram n - n - 1 dgram\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const path = `${inst.queue}/public/dlog`;
    assert(Deno.statSync(path).isSocket);
    sendDatagram(path, new TextEncoder().encode("first"));
    sendDatagram(path, new TextEncoder().encode("second"));
    const file = `${inst.dir}/data/dgrams`;
    assert(await waitFor(() => readLines(file).length >= 2), inst.readLog());
    assertMatch(readLines(file).join("\n"), /^\d+ first\n\d+ second$/);
  } finally {
    await inst.destroy();
  }
});

Deno.test("master: an inet service listens on every inet_interfaces address", opts, async () => {
  const port = freePort();
  const inst = await Instance.create(
    `${port} inet n - n - - echo\n`,
    "inet_interfaces = 127.0.0.1, 127.0.0.2",
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const a = await askHost("127.0.0.1", port);
    const b = await askHost("127.0.0.2", port);
    assertMatch(a, new RegExp(`^\\d+ ${port} hi$`));
    // One process serves both sockets (-s 2).
    assertEquals(a.split(" ")[0], b.split(" ")[0]);
  } finally {
    await inst.destroy();
  }
});

function askHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    Deno.connect({ hostname: host, port }).then(async (conn) => {
      await conn.write(new TextEncoder().encode("hi\n"));
      const buf = new Uint8Array(200);
      const timer = setTimeout(() => conn.close(), 10_000);
      const n = await conn.read(buf).catch(() => null);
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // Closed by the timer.
      }
      resolve(new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim());
    }, () => resolve(""));
  });
}

Deno.test(
  "master: maxproc bounds the processes; the limit warning is Postfix's",
  opts,
  async () => {
    const inst = await Instance.create("busy unix - - n - 2 echo\n");
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const path = `${inst.queue}/private/busy`;
      const replies = await Promise.all([
        ask({ path }, "sleep 1500"),
        ask({ path }, "sleep 1500"),
        ask({ path }, "sleep 10"),
      ]);
      const pids = new Set(replies.map((r) => r.split(" ")[0]));
      assertEquals(replies.every((r) => / busy sleep \d+$/.test(r)), true, replies.join("|"));
      assertEquals(pids.size, 2, `processes: ${[...pids]}`);
      assertStringIncludes(
        inst.readLog(),
        `warning: service "busy" (private/busy) has reached its process limit "2": ` +
          "new clients may experience noticeable delays",
      );
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test(
  "master: a conditional wake-up (N?) goes out only while the service runs",
  opts,
  async () => {
    const inst = await Instance.create("ctick unix n - n 1? 1 tick\n", "max_idle = 30");
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const file = `${inst.dir}/data/ticks`;
      await new Promise((r) => setTimeout(r, 2500));
      assertEquals(readLines(file), [], "woken before use");
      await sendTrigger(`${inst.queue}/public/ctick`, "X");
      assert(await waitFor(() => readLines(file).some((l) => l.endsWith(" W")), 8000));
      assertMatch(readLines(file)[0], /^\d+ X$/);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test("master: reload stops a removed service and removes its socket", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\ngone unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const pid = Number((await ask({ path: `${inst.queue}/private/gone` }, "x")).split(" ")[0]);
    await Deno.writeTextFile(`${inst.dir}/master.cf`, "echo unix - - n - - echo\n");
    assertEquals((await inst.postfix("reload")).code, 0);
    assert(await waitFor(() => !alive(pid)), "the removed service's process still runs");
    assert(
      await waitFor(() => {
        try {
          Deno.statSync(`${inst.queue}/private/gone`);
          return false;
        } catch {
          return true;
        }
      }),
    );
    assertEquals(serviceProcs(inst.masterPid(), "gone"), []);
    assert(!/warning: process/.test(inst.readLog()), inst.readLog());
  } finally {
    await inst.destroy();
  }
});

Deno.test("postfix abort stops the master and its children at once", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const master = inst.masterPid();
    const child = Number((await ask({ path: `${inst.queue}/private/echo` }, "x")).split(" ")[0]);
    const abort = await inst.postfix("abort");
    assertEquals(abort.code, 0);
    assertStringIncludes(abort.stderr, "postfix/postfix-script: aborting the Postfix mail system");
    assert(await waitFor(() => !alive(master) && !alive(child), 8000));
  } finally {
    await inst.destroy();
  }
});

Deno.test("master: a pass service serves connections handed over on its socket", opts, async () => {
  const { listenInet, localPort, setNonblocking, acceptFd, closeFd, pollAsync, POLLIN } =
    await import(
      "../../../lib/ffi/libc.ts"
    );
  const { passConnection } = await import("../../../lib/ipc/pass.ts");
  const inst = await Instance.create("handoff pass - - n - - pecho\n");
  const front = listenInet("127.0.0.1", 0, 4);
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    setNonblocking(front, true);
    const port = localPort(front);
    // The test plays postscreen: accept the client, hand it to the pass service.
    const reply = ask({ port }, "via pass");
    await pollAsync([{ fd: front, events: POLLIN }], 5000);
    const client = acceptFd(front);
    passConnection(`${inst.queue}/private/handoff`, client);
    closeFd(client);
    assertMatch(await reply, /^\d+ handoff via pass$/);
  } finally {
    closeFd(front);
    await inst.destroy();
  }
});
