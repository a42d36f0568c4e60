// The discard agent: every recipient "delivered", the next hop logged as
// the reason, the recipients marked done.

import { assertEquals, assertStringIncludes } from "../assert.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import { queueFilePath } from "../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../daemons/qmgr/message.ts";
import { deliverDiscard } from "../../daemons/discard.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "./qmgr/helpers.ts";
import { serveAgent } from "../lib/deliver/agent_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("discard marks every recipient sent with the next hop as the reason", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const id = writeMessage(
    q,
    { recipients: ["a@example.com", "b@example.com"], notify: 2 },
    "active",
  );
  const agent = await serveAgent(
    q.dir,
    { layout: q.layout, bounce, resolution: 2 },
    deliverDiscard,
  );
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
  const { reply, log } = await withLog(async (lines) => {
    const reply = await sendDeliverRequest(agent.path, {
      flags: 0,
      queueName: "active",
      queueId: id,
      dataOffset: msg.dataOffset,
      dataSize: msg.size,
      nexthop: "silently",
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
  assertEquals([...reply.results.values()], ["sent", "sent"]);
  assertEquals(reply.traced, true, "NOTIFY=SUCCESS recipients go to the trace log");
  assertStringIncludes(log, `${id}: to=<a@example.com>, relay=none, delay=`);
  assertStringIncludes(log, "dsn=2.0.0, status=sent (silently)");
  assertEquals(
    parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id))).recipients,
    [],
  );
  await Deno.remove(q.dir, { recursive: true });
});
