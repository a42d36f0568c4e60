// postqueue(1): flags, flush triggers and Postfix's diagnostics. The listing
// itself is checked against the golden files in tests/daemons/showq.test.ts.

import { assertEquals, assertStringIncludes } from "../assert.ts";
import { projectRoot, runProgram } from "../run.ts";
import {
  emptyInstance,
  fillQueue,
  goldenInstance,
  type QueueInstance,
  removeInstance,
} from "../daemons/showq_fixture.ts";

const usage =
  "postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site\n";

function postqueue(inst: QueueInstance, args: string[]) {
  return runProgram("postqueue", ["-c", inst.configDir, ...args], { env: inst.env });
}

Deno.test("postqueue with no action, two actions, an operand or a bad flag prints the usage and exits 69", async () => {
  const inst = emptyInstance();
  try {
    for (const args of [[], ["-p", "-f"], ["-p", "extra"], ["-j", "-j"]]) {
      const got = await postqueue(inst, args);
      assertEquals([got.code, got.stderr], [69, usage], args.join(" "));
    }
    const bad = await postqueue(inst, ["-x"]);
    assertEquals([bad.code, bad.stderr], [69, "postqueue: invalid option -- 'x'\n" + usage]);
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -f with qmgr down says the mail system is down", async () => {
  const inst = emptyInstance();
  try {
    const got = await postqueue(inst, ["-f"]);
    assertEquals(got.code, 69);
    assertEquals(
      got.stderr,
      "postqueue: warning: unable to look up public/qmgr: No such file or directory\n" +
        "postqueue: fatal: Cannot flush mail queue - mail system is down\n",
    );
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -f asks qmgr to flush dead sites and rescan all queues", async () => {
  const inst = emptyInstance();
  const path = `${inst.queueDir}/public/qmgr`;
  const listener = Deno.listen({ transport: "unix", path });
  try {
    const received = (async () => {
      const conn = await listener.accept();
      const chunks: number[] = [];
      const buf = new Uint8Array(64);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(...buf.subarray(0, n));
      }
      conn.close();
      return new TextDecoder().decode(new Uint8Array(chunks));
    })();
    const got = await postqueue(inst, ["-f"]);
    assertEquals([got.code, got.stderr], [0, ""]);
    assertEquals(await received, "FADI");
  } finally {
    listener.close();
    removeInstance(inst);
  }
});

Deno.test("postqueue -i refuses a malformed queue id as Postfix does", async () => {
  const inst = emptyInstance();
  try {
    const got = await postqueue(inst, ["-i", "bad.id"]);
    assertEquals(got.code, 69);
    assertEquals(got.stderr, 'postqueue: fatal: Cannot flush queue ID - invalid name: "bad.id"\n');
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -i and -s without a flush service fail with Postfix's words", async () => {
  const inst = emptyInstance();
  try {
    for (const args of [["-i", "D9F5C2121CE"], ["-s", "example.com"]]) {
      const got = await postqueue(inst, args);
      assertEquals(got.code, 69);
      assertEquals(
        got.stderr,
        "postqueue: warning: connect to public/flush: No such file or directory\n" +
          "postqueue: fatal: Cannot flush mail queue - mail system is down\n",
      );
    }
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -c names the configuration; MAIL_CONFIG is the default; -v is accepted", async () => {
  const inst = goldenInstance();
  try {
    const viaFlag = await postqueue(inst, ["-v", "-j"]);
    const viaEnv = await runProgram("postqueue", ["-j"], { env: inst.env });
    assertEquals(viaFlag.code, 0);
    assertEquals(viaFlag.stdout.split("\n").length, 10);
    assertEquals(viaEnv.stdout.split("\n").sort(), viaFlag.stdout.split("\n").sort());
    const missing = await runProgram("postqueue", ["-c", `${inst.dir}/nowhere`, "-p"], {
      env: inst.env,
    });
    assertEquals(missing.code, 69);
    assertStringIncludes(missing.stderr, "postqueue: fatal: open ");
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -p reports a showq that cannot run stand-alone, as Postfix", async () => {
  const inst = emptyInstance("daemon_directory = /nonexistent\n");
  try {
    const missing = await runProgram("postqueue", ["-c", inst.configDir, "-p"], {
      env: { ...inst.env, POSTHORN_LAUNCHER: "" },
    });
    assertEquals(missing.code, 71);
    assertStringIncludes(
      missing.stderr,
      "postqueue: fatal: execvp /nonexistent/showq: No such file or directory\n",
    );
    const failing = await runProgram("postqueue", ["-c", inst.configDir, "-p"], {
      env: { ...inst.env, POSTHORN_LAUNCHER: "/bin/false" },
    });
    assertEquals(failing.code, 70);
    assertStringIncludes(failing.stderr, "postqueue: fatal: Error running /nonexistent/showq\n");
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -p refuses a showq service that does not speak the showq protocol", async () => {
  const inst = emptyInstance();
  const listener = Deno.listen({ transport: "unix", path: `${inst.queueDir}/public/showq` });
  const serve = (async () => {
    const conn = await listener.accept();
    await conn.write(new TextEncoder().encode("protocol\0something_else\0\0"));
    conn.close();
  })();
  try {
    const got = await postqueue(inst, ["-p"]);
    await serve;
    assertEquals(got.code, 75);
    assertEquals(
      got.stderr,
      "postqueue: fatal: showq service: unexpected greeting, not mail_queue_list_protocol\n",
    );
  } finally {
    listener.close();
    removeInstance(inst);
  }
});

Deno.test("postqueue -p whose reader goes away (mailq | head) stops quietly", async () => {
  const inst = emptyInstance();
  fillQueue(inst.layout, "deferred", 3000);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-ffi",
        "--unstable-net",
        `${projectRoot}mod.ts`,
        "postqueue",
        "-c",
        inst.configDir,
        "-p",
      ],
      env: inst.env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read();
    await reader.cancel();
    const stderr = new TextDecoder().decode(
      (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
    );
    const status = await child.status;
    assertEquals(status.code, 141);
    assertEquals(stderr.split("\n").filter((l) => l && !/Mail system is down/.test(l)), []);
  } finally {
    removeInstance(inst);
  }
});
