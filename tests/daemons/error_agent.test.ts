// The error/retry agent: every recipient bounced (deferred as retry) with
// the next-hop text as the reason and its detail code, if any.

import { assertEquals, assertStringIncludes } from "../assert.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import { queueFilePath } from "../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../daemons/qmgr/message.ts";
import { deliverError } from "../../daemons/error.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "./qmgr/helpers.ts";
import { serveAgent } from "../lib/deliver/agent_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function run(retry: boolean, nexthop: string) {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const id = writeMessage(q, { recipients: ["a@example.com", "b@example.com"] }, "active");
  const agent = await serveAgent(
    q.dir,
    { layout: q.layout, bounce, resolution: 2 },
    (s) => deliverError(s, retry),
  );
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
  const result = await withLog(async (lines) => {
    const reply = await sendDeliverRequest(agent.path, {
      flags: 0,
      queueName: "active",
      queueId: id,
      dataOffset: msg.dataOffset,
      dataSize: msg.size,
      nexthop,
      encoding: "",
      smtputf8: 0,
      sender: msg.sender,
      envid: "",
      ret: 0,
      arrival: msg.arrival,
      active: msg.arrival,
      attrs: {},
      recipients: msg.recipients,
    });
    return { reply, log: lines.join("\n") };
  });
  await agent.close();
  const left =
    parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id))).recipients
      .length;
  await Deno.remove(q.dir, { recursive: true });
  return { ...result, bounce, id, left };
}

Deno.test(
  "error bounces every recipient with the next hop as reason and 5.0.0 by default",
  opts,
  async () => {
    const { reply, log, bounce, id, left } = await run(
      false,
      "mail for this domain is not accepted",
    );
    assertEquals([...reply.results.values()], ["bounced", "bounced"]);
    assertStringIncludes(log, `${id}: to=<a@example.com>, relay=none, delay=`);
    assertStringIncludes(log, "dsn=5.0.0, status=bounced (mail for this domain is not accepted)");
    assertEquals(bounce.calls.map((c) => [c.log, c.dsn?.status, c.dsn?.diagType]), [
      ["bounce", "5.0.0", "X-Postfix"],
      ["bounce", "5.0.0", "X-Postfix"],
    ]);
    assertEquals(left, 0, "both recipients are done");
  },
);

Deno.test("error takes a detail code from the next hop", opts, async () => {
  const { log } = await run(false, "5.1.2 host not found");
  assertStringIncludes(log, "dsn=5.1.2, status=bounced (host not found)");
});

Deno.test("error with a 4.x.x code defers", opts, async () => {
  const { reply, log, left } = await run(false, "4.3.5 try later");
  assertEquals([...reply.results.values()], ["deferred", "deferred"]);
  assertStringIncludes(log, "dsn=4.3.5, status=deferred (try later)");
  assertEquals(left, 2);
});

Deno.test("retry defers every recipient with 4.0.0 by default", opts, async () => {
  const { reply, log, bounce } = await run(true, "delivery suspended");
  assertEquals([...reply.results.values()], ["deferred", "deferred"]);
  assertStringIncludes(log, "dsn=4.0.0, status=deferred (delivery suspended)");
  assertEquals(bounce.calls.map((c) => c.log), ["defer", "defer"]);
});
