// showq and the queue listing: the reference's queue (every queue state,
// deferral reasons, hold, forced expiry) listed as the reference lists it,
// through the service and stand-alone.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";
import {
  addMessage,
  emptyInstance,
  fillQueue,
  goldenDir,
  goldenInstance,
  type QueueInstance,
  removeInstance,
} from "./showq_fixture.ts";
import { readQueuedMessage, scanQueues } from "../../daemons/showq/scan.ts";
import { parseDeferLog } from "../../daemons/showq/defer_log.ts";
import {
  encodeQueuedMessage,
  formatMessageText,
  type QueuedMessage,
  ShowqDecoder,
  showqEnd,
  showqGreeting,
  ShowqProtocolError,
} from "../../lib/showq_client.ts";
import { projectRoot } from "../run.ts";

const ref = (name: string) => Deno.readTextFileSync(`${goldenDir}${name}`);

/** Splits a text listing into header, message blocks (sorted) and trailer. */
function textShape(listing: string): { head: string; blocks: string[]; tail: string } {
  const lines = listing.split("\n");
  const head = lines[0];
  const body = lines.slice(1).join("\n");
  const parts = body.split("\n\n");
  const tail = parts.pop() ?? "";
  return { head, blocks: parts.sort(), tail };
}

const referencePostqueue = "/usr/sbin/postqueue";
const haveReference = (() => {
  try {
    return Deno.statSync(referencePostqueue).isFile && Deno.uid() === 0;
  } catch {
    return false;
  }
})();

function postqueue(inst: QueueInstance, args: string[]) {
  return runProgram("postqueue", ["-c", inst.configDir, ...args], { env: inst.env });
}

Deno.test("postqueue -p lists the reference queue as the golden file, message by message", async () => {
  const inst = goldenInstance();
  try {
    const got = await postqueue(inst, ["-p"]);
    assertEquals(got.code, 0);
    // Directory order depends on the file system: compare blocks, not their order.
    assertEquals(textShape(got.stdout), textShape(ref("showq.p.ref")));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -j prints the golden JSON objects, one per line", async () => {
  const inst = goldenInstance();
  try {
    const got = await postqueue(inst, ["-j"]);
    assertEquals(got.code, 0);
    assertEquals(got.stdout.split("\n").sort(), ref("showq.j.ref").split("\n").sort());
  } finally {
    removeInstance(inst);
  }
});

Deno.test({
  name: "postqueue -p and -j are byte for byte the reference's on the same queue copy",
  ignore: !haveReference,
  async fn() {
    const inst = goldenInstance();
    // The reference's showq reads the queue as mail_owner.
    new Deno.Command("chown", { args: ["-R", "postfix:postfix", inst.queueDir] }).outputSync();
    try {
      for (const flag of ["-p", "-j"]) {
        const mine = await postqueue(inst, [flag]);
        const theirs = new Deno.Command(referencePostqueue, {
          args: ["-c", inst.configDir, flag],
          env: { TZ: "UTC" },
        }).outputSync();
        assertEquals(mine.stdout, new TextDecoder().decode(theirs.stdout), flag);
      }
    } finally {
      removeInstance(inst);
    }
  },
});

/** An instance holding one of the golden queue archives. */
function tarInstance(tar: string, extra = ""): QueueInstance {
  const inst = emptyInstance(extra);
  new Deno.Command("tar", {
    args: ["-xf", `${goldenDir}${tar}`, "-C", inst.queueDir, "--no-same-owner"],
  }).outputSync();
  return inst;
}

/** An instance holding crafted.tar (odd addresses, control characters, UTF-8). */
function craftedInstance(extra = ""): QueueInstance {
  return tarInstance("crafted.tar", extra);
}

Deno.test("showq lists defer log entries as the reference: repeats kept, gaps named, the rest after", async () => {
  const inst = tarInstance("deferlog.tar");
  try {
    assertEquals((await postqueue(inst, ["-p"])).stdout, ref("deferlog.p.ref"));
    assertEquals((await postqueue(inst, ["-j"])).stdout, ref("deferlog.j.ref"));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("showq lists a large message with many recipients as the reference, skipping its text", async () => {
  const inst = tarInstance("big.tar");
  try {
    const [path] = [`${inst.queueDir}/incoming/03BA7212010`];
    // Overwrite the middle of the message text: a listing never parses it.
    const file = Deno.openSync(path, { write: true });
    file.seekSync(50000, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(1000).fill(0xff));
    file.close();
    const got = await postqueue(inst, ["-p"]);
    assertEquals(got.stdout, ref("big.p.ref"));
  } finally {
    removeInstance(inst);
  }
});

for (const utf8 of [false, true]) {
  const suffix = utf8 ? ".utf8" : "";
  Deno.test(`showq quotes, sanitizes and names the null address as the reference (smtputf8_enable = ${utf8 ? "yes" : "no"})`, async () => {
    const inst = craftedInstance(`smtputf8_enable = ${utf8 ? "yes" : "no"}\n`);
    try {
      const p = await postqueue(inst, ["-p"]);
      assertEquals(textShape(p.stdout), textShape(ref(`crafted${suffix}.p.ref`)));
      const j = await postqueue(inst, ["-j"]);
      assertEquals(j.stdout.split("\n").sort(), ref(`crafted${suffix}.j.ref`).split("\n").sort());
    } finally {
      removeInstance(inst);
    }
  });
}

Deno.test("postqueue -p with the mail system down warns as Postfix and reads the queue", async () => {
  const inst = goldenInstance();
  try {
    const got = await postqueue(inst, ["-p"]);
    assertMatch(
      got.stderr,
      /^postqueue: warning: Mail system is down -- accessing queue directly \(Connect to the \w+ showq service: No such file or directory\)\n$/,
    );
  } finally {
    removeInstance(inst);
  }
});

Deno.test("postqueue -p on an empty queue says so; one message is one Request", async () => {
  const inst = emptyInstance();
  try {
    assertEquals((await postqueue(inst, ["-p"])).stdout, ref("empty.p.ref"));
    assertEquals((await postqueue(inst, ["-j"])).stdout, "");
    const one = `${inst.queueDir}/incoming/D9F5C2121CE`;
    const src = goldenInstance();
    Deno.copyFileSync(`${src.queueDir}/incoming/D9F5C2121CE`, one);
    Deno.chmodSync(one, 0o700);
    removeInstance(src);
    assertEquals((await postqueue(inst, ["-p"])).stdout, ref("one.p.ref"));
  } finally {
    removeInstance(inst);
  }
});

Deno.test("showq as a service answers postqueue -p without the fallback warning", async () => {
  const inst = goldenInstance();
  const child = await startShowq(inst);
  try {
    const got = await postqueue(inst, ["-p"]);
    assertEquals(got.stderr, "");
    assertEquals(textShape(got.stdout), textShape(ref("showq.p.ref")));
    const json = await postqueue(inst, ["-j"]);
    assertEquals(json.stdout.split("\n").sort(), ref("showq.j.ref").split("\n").sort());
  } finally {
    child.kill("SIGTERM");
    await child.status;
    removeInstance(inst);
  }
});

Deno.test("showq skips incomplete, vanished and corrupt files and names that are not queue ids", () => {
  const inst = emptyInstance();
  try {
    const id = addMessage(inst.layout, "incoming", "a@example.com", ["b@example.com"]);
    const incomplete = addMessage(inst.layout, "incoming", "c@example.com", ["d@example.com"]);
    Deno.chmodSync(`${inst.queueDir}/incoming/${incomplete}`, 0o600);
    Deno.writeFileSync(`${inst.queueDir}/incoming/12345.678`, new Uint8Array([1, 2, 3]));
    const corrupt = addMessage(inst.layout, "incoming", "e@example.com", ["f@example.com"]);
    Deno.writeFileSync(`${inst.queueDir}/incoming/${corrupt}`, new Uint8Array([0x53, 0x7f]));
    Deno.chmodSync(`${inst.queueDir}/incoming/${corrupt}`, 0o700);
    const ids = [...scanQueues(inst.layout)].map((m) => m.queueId);
    assertEquals(ids, [id]);
    assertEquals(
      readQueuedMessage(inst.layout, "incoming", "ABCDEF", `${inst.queueDir}/incoming/ABCDEF`),
      null,
    );
  } finally {
    removeInstance(inst);
  }
});

Deno.test("defer logs are read in Postfix's format, old one-line entries too", () => {
  const text = "\n<bob@remote.test>: connect refused\nrecipient=bob@remote.test\noffset=243\n" +
    "status=4.4.1\naction=delayed\nreason=connect refused\n\n\n<old@x.test>: old style\n\n" +
    "recipient=none@x.test\nreason=\n\n";
  assertEquals(parseDeferLog(text), [
    { recipient: "bob@remote.test", reason: "connect refused" },
    { recipient: "old@x.test", reason: "old style" },
    { recipient: "none@x.test", reason: "(description unavailable)" },
  ]);
});

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("the showq stream is Postfix's: greeting, one list per message, empty list at the end", () => {
  const msg: QueuedMessage = {
    queueName: "hold",
    queueId: "ABCDEF123",
    arrivalTime: 1795535618,
    size: 1234,
    forcedExpire: true,
    sender: "",
    recipients: [{ address: "x@y.test", reason: "why" }, { address: "z@y.test", reason: "" }],
  };
  const bytes = join(showqGreeting(), encodeQueuedMessage(msg), showqEnd());
  assertEquals(
    new TextDecoder().decode(bytes).replaceAll("\0", "|"),
    "protocol|mail_queue_list_protocol||queue_name|hold|queue_id|ABCDEF123|time|1795535618|" +
      "size|1234|forced_expire|1|sender|MAILER-DAEMON|recipient|x@y.test|reason|why|" +
      "recipient|z@y.test|reason||||",
  );
  // Byte by byte, as a slow socket delivers it.
  const dec = new ShowqDecoder();
  const got: QueuedMessage[] = [];
  for (const b of bytes) got.push(...dec.push(new Uint8Array([b])));
  dec.end();
  assertEquals(got, [{ ...msg, sender: "MAILER-DAEMON" }]);
  const cut = new ShowqDecoder();
  cut.push(bytes.subarray(0, bytes.length - 1));
  let refused = false;
  try {
    cut.end();
  } catch (err) {
    refused = err instanceof ShowqProtocolError;
  }
  assert(refused);
  Deno.env.set("TZ", "UTC");
  const text = formatMessageText(msg);
  assertStringIncludes(text, "ABCDEF123!#    1234 ");
  assertStringIncludes(text, "  MAILER-DAEMON\n");
});

Deno.test("a stream that does not open with the showq greeting is refused", () => {
  let refused = false;
  try {
    new ShowqDecoder().push(new TextEncoder().encode("protocol\0other\0\0"));
  } catch (err) {
    refused = err instanceof ShowqProtocolError;
  }
  assert(refused);
});

/** Starts Posthorn's showq on the instance's public/showq; returns the child. */
async function startShowq(inst: QueueInstance): Promise<Deno.ChildProcess> {
  const socket = `${inst.queueDir}/public/showq`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-ffi",
      "--unstable-net",
      `${projectRoot}mod.ts`,
      "showq",
      "-L",
      `unix:${socket}`,
    ],
    env: inst.env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let t = 0; t < 200; t++) {
    try {
      Deno.statSync(socket);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return child;
}

Deno.test({
  name: "the reference's postqueue lists the queue through Posthorn's showq service",
  ignore: !haveReference,
  async fn() {
    const inst = goldenInstance();
    const showq = await startShowq(inst);
    try {
      const out = new Deno.Command(referencePostqueue, {
        args: ["-c", inst.configDir, "-p"],
        env: { TZ: "UTC" },
      }).outputSync();
      assertEquals(new TextDecoder().decode(out.stderr), "");
      assertEquals(textShape(new TextDecoder().decode(out.stdout)), textShape(ref("showq.p.ref")));
    } finally {
      showq.kill("SIGTERM");
      await showq.status;
      removeInstance(inst);
    }
  },
});

Deno.test({
  name: "Posthorn's postqueue reads the reference's showq run stand-alone",
  ignore: !haveReference,
  async fn() {
    const inst = goldenInstance("daemon_directory = /usr/lib/postfix/sbin\n");
    new Deno.Command("chown", { args: ["-R", "postfix:postfix", inst.queueDir] }).outputSync();
    try {
      const got = await runProgram("postqueue", ["-c", inst.configDir, "-j"], {
        env: { ...inst.env, POSTHORN_LAUNCHER: "" },
      });
      assertEquals(got.code, 0);
      assertEquals(got.stdout.split("\n").sort(), ref("showq.j.ref").split("\n").sort());
    } finally {
      removeInstance(inst);
    }
  },
});

Deno.test("showq survives clients that hang up mid-report and serves the next one", async () => {
  const inst = emptyInstance();
  fillQueue(inst.layout, "deferred", 3000);
  const showq = await startShowq(inst);
  try {
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({ transport: "unix", path: `${inst.queueDir}/public/showq` });
      await conn.read(new Uint8Array(16));
      conn.close();
    }
    const got = await postqueue(inst, ["-p"]);
    assertEquals(got.stderr, "");
    assertStringIncludes(got.stdout, "-- 67 Kbytes in 3000 Requests.\n");
  } finally {
    showq.kill("SIGTERM");
    await showq.status;
    removeInstance(inst);
  }
});
