// The queue manager with a VERP message (V record), in-process: one
// recipient per delivery request with that recipient's VERP sender, the
// null sender's request ignored as the reference's qmgr does, and the
// per-recipient non-delivery notices (bounce, expired) asked of the bounce
// service unless disable_verp_bounces.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../../lib/queue/record.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { Qmgr } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { verpSender } from "../../../lib/verp.ts";
import {
  type AgentAction,
  makeQueue,
  recordingBounce,
  TestAgent,
  type TestQueue,
  testResolver,
  withLog,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

let serial = 0x5000;

/** A queue file in incoming: sender, V records, [original, address] recipients. */
function writeVerpMessage(
  q: TestQueue,
  sender: string,
  verp: string[],
  recipients: [string, string][],
  arrival = Date.now() / 1000,
): string {
  const id = `B${(serial++).toString(16).toUpperCase()}ABC`;
  const content = ["Subject: verp", "", "Hello."].map((l) => encodeRecord("N", l));
  const size = content.reduce((n, r) => n + r.length, 0);
  const env = [
    encodeRecord("T", `${Math.floor(arrival)} 0`),
    encodeRecord("A", "rewrite_context=local"),
    encodeRecord("S", sender),
    ...verp.map((v) => encodeRecord("V", v)),
    ...recipients.flatMap(([orig, addr]) => [encodeRecord("O", orig), encodeRecord("R", addr)]),
  ];
  const head = (offset: number) =>
    encodeRecord(
      "C",
      [size, offset, recipients.length, 0, size, 0].map((n) => String(n).padStart(15, " "))
        .join(" "),
    );
  const envBytes = joinRecords(env);
  const mesg = encodeRecord("M", "");
  const offset = head(0).length + envBytes.length + mesg.length;
  const data = joinRecords([
    head(offset),
    envBytes,
    mesg,
    ...content,
    encodeRecord("X", ""),
    encodeRecord("E", ""),
  ]);
  const path = queueFilePath(q.layout, "incoming", id);
  Deno.writeFileSync(path, data, { mode: 0o700 });
  Deno.chmodSync(path, 0o700);
  return id;
}

/** Runs a qmgr over the queue until idle; returns the log and the VERP flushes asked for. */
async function runQmgr(
  q: TestQueue,
  action: AgentAction,
  mainCf = "",
): Promise<{ agent: TestAgent; log: string; verp: string[]; flushes: string[] }> {
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce, () => action);
  const verp: string[] = [];
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, mainCf)),
    resolve: testResolver,
    deliver: (t, r) => agent.deliver(t, r),
    bounce,
    bounceVerp(log, msg, delims) {
      verp.push(`${log} ${msg.queueId} ${msg.sender} ${delims}`);
      return Promise.resolve(true);
    },
  });
  return await withLog(async (lines) => {
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    const flushes = bounce.calls.filter((c) => c.kind === "flush").map((c) =>
      `${c.log} ${c.queueId}`
    );
    return { agent, log: lines.join("\n"), verp, flushes };
  });
}

Deno.test("verpSender() builds Postfix's per-recipient senders", () => {
  const r = (origRcpt: string, address: string) => ({ origRcpt, address });
  assertEquals(verpSender("+=", "list@example.com", r("", "a@x.org")), "list+a=x.org@example.com");
  assertEquals(
    verpSender("-=", "owner-l@example.com", r("", "c@x.org")),
    "owner-l-c=x.org@example.com",
  );
  // The original recipient counts (an alias's address, an unqualified one).
  assertEquals(
    verpSender("+=", "list@example.com", r("alias@x.org", "target@y.org")),
    "list+alias=x.org@example.com",
  );
  assertEquals(
    verpSender("+=", "list@example.com", r("noat", "noat@example.com")),
    "list+noat@example.com",
  );
  // A sender without a domain, a recipient ending in @.
  assertEquals(verpSender("+=", "list", r("", "a@x.org")), "list+a=x.org");
  assertEquals(verpSender("+=", "list@example.com", r("", "a@")), "list+a@example.com");
  assertEquals(
    verpSender("+=", "l@a@example.com", r("", "u@x@y.org")),
    "l@a+u@x=y.org@example.com",
  );
});

Deno.test(
  "qmgr sends a VERP message one recipient per request, each with its sender",
  opts,
  async () => {
    const q = await makeQueue();
    const id = writeVerpMessage(q, "list@example.com", ["+=", "-="], [
      ["a@one.test", "a@one.test"],
      ["b@one.test", "b@one.test"],
      ["noat", "noat@one.test"],
    ]);
    const { agent, log } = await runQmgr(q, "sent");
    assertStringIncludes(log, `${id}: removed`);
    assertEquals(agent.requests.map((r) => r.recipients.length), [1, 1, 1]);
    // The first V record counts.
    assertEquals(
      agent.requests.map((r) => `${r.sender} ${r.recipients[0].address}`).sort(),
      [
        "list+a=one.test@example.com a@one.test",
        "list+b=one.test@example.com b@one.test",
        "list+noat@example.com noat@one.test",
      ],
    );
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("qmgr ignores a VERP request for the null sender, as the reference", opts, async () => {
  const q = await makeQueue();
  const id = writeVerpMessage(q, "", ["+="], [["a@one.test", "a@one.test"], [
    "b@one.test",
    "b@one.test",
  ]]);
  const { agent, log } = await runQmgr(q, "sent");
  assertStringIncludes(log, `${id}: ignoring VERP request for null sender`);
  assertEquals(agent.requests.length, 1);
  assertEquals(agent.requests[0].sender, "");
  assertEquals(agent.requests[0].recipients.length, 2);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("a VERP message's bounces are flushed as VERP notices", opts, async () => {
  const q = await makeQueue();
  const id = writeVerpMessage(q, "list@example.com", ["+="], [
    ["a@one.test", "a@one.test"],
    ["b@one.test", "b@one.test"],
  ]);
  const { verp, flushes } = await runQmgr(q, "bounced");
  assertEquals(verp, [`bounce ${id} list@example.com +=`]);
  assertEquals(flushes, []);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("disable_verp_bounces = yes: one plain notice for a VERP message", opts, async () => {
  const q = await makeQueue();
  const id = writeVerpMessage(q, "list@example.com", ["+="], [
    ["a@one.test", "a@one.test"],
    ["b@one.test", "b@one.test"],
  ]);
  const { agent, verp, flushes } = await runQmgr(q, "bounced", "disable_verp_bounces = yes\n");
  assertEquals(verp, []);
  assertEquals(flushes, [`bounce ${id}`]);
  // Deliveries are still one per recipient, with VERP senders.
  assertEquals(agent.requests.map((r) => r.sender).sort(), [
    "list+a=one.test@example.com",
    "list+b=one.test@example.com",
  ]);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "an expired VERP message is returned with VERP notices from its defer log",
  opts,
  async () => {
    const q = await makeQueue();
    const old = Date.now() / 1000 - 10 * 86400;
    const id = writeVerpMessage(q, "list@example.com", ["+="], [["a@one.test", "a@one.test"]], old);
    const { verp, log } = await runQmgr(q, "deferred");
    assertStringIncludes(log, `${id}: from=<list@example.com>, status=expired, returned to sender`);
    assertEquals(verp, [`defer ${id} list@example.com +=`]);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("the queue file's first V record is the message's VERP delimiters", async () => {
  const q = await makeQueue();
  const id = writeVerpMessage(q, "l@example.com", ["-=", "+="], [["a@b", "a@b"]]);
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "incoming", id)));
  assertEquals(msg.verpDelims, "-=");
  await Deno.remove(q.dir, { recursive: true });
});
