// The delivery request protocol end to end over a unix socket: qmgr's
// client, the agent's session, per-recipient results, and the D marks.

import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { sendDeliverRequest } from "../../../lib/deliver/client.ts";
import type { DeliverRequest } from "../../../lib/deliver/request.ts";
import { DeliverStatus } from "../../../lib/deliver/request.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "../../daemons/qmgr/helpers.ts";
import { serveAgent } from "./agent_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function requestFor(q: Awaited<ReturnType<typeof makeQueue>>, id: string): DeliverRequest {
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
  return {
    flags: 0,
    queueName: "active",
    queueId: id,
    dataOffset: msg.dataOffset,
    dataSize: msg.size,
    nexthop: "example.com",
    encoding: "8bit",
    smtputf8: 0,
    sender: msg.sender,
    envid: "env-1",
    ret: 2,
    arrival: msg.arrival,
    active: Date.now() / 1000,
    attrs: { rewrite_context: "local", client_name: "localhost" },
    recipients: msg.recipients,
  };
}

Deno.test(
  "a delivery request reaches the agent intact and the reply carries each outcome",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const id = writeMessage(
      q,
      { recipients: ["a@example.com", "b@example.com", "c@example.com"] },
      "active",
    );
    let seen: DeliverRequest | undefined;
    const agent = await serveAgent(
      q.dir,
      { layout: q.layout, bounce, resolution: 2 },
      async (s) => {
        seen = s.request;
        const [a, b, c] = s.request.recipients;
        await s.sent(a, { dsn: "2.0.0", relay: "local", text: "delivered to mailbox" });
        await s.bounced(b, { dsn: "5.1.1", relay: "local", text: "unknown user" });
        await s.deferred(c, { dsn: "4.2.2", relay: "local", text: "mailbox full" });
      },
    );
    const req = requestFor(q, id);
    const log = await withLog(async (lines) => {
      const reply = await sendDeliverRequest(agent.path, req);
      assertEquals(reply.status, DeliverStatus.OK);
      assertEquals([...reply.results.values()], ["sent", "bounced", "deferred"]);
      return lines.join("\n");
    });
    await agent.close();
    assertEquals(seen, {
      ...req,
      arrival: Number(req.arrival.toFixed(6)),
      active: Number(req.active.toFixed(6)),
    });
    assertStringIncludes(log, `${id}: to=<a@example.com>, relay=local, delay=`);
    assertStringIncludes(log, "dsn=5.1.1, status=bounced (unknown user)");
    assertStringIncludes(log, "dsn=4.2.2, status=deferred (mailbox full)");
    // Sent and bounced recipients are done in the queue file; the deferred one is not.
    const after = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
    assertEquals(after.recipients.map((r) => r.address), ["c@example.com"]);
    assertEquals(bounce.calls.map((c) => [c.log, c.rcpt, c.dsn?.action]), [
      ["bounce", "b@example.com", "failed"],
      ["defer", "c@example.com", "delayed"],
    ]);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "a site failure defers every recipient and says so in the reply status",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const id = writeMessage(q, { recipients: ["a@example.com", "b@example.com"] }, "active");
    const agent = await serveAgent(
      q.dir,
      { layout: q.layout, bounce, resolution: 2 },
      async (s) => {
        await s.deferSite({
          dsn: "4.4.1",
          relay: "none",
          text: "connect to example.com: Connection refused",
        });
      },
    );
    const reply = await withLog(() => sendDeliverRequest(agent.path, requestFor(q, id)));
    await agent.close();
    assertEquals(reply.status, DeliverStatus.DEFER);
    assertEquals(reply.hopStatus, "4.4.1");
    assertEquals(reply.hopReason, "connect to example.com: Connection refused");
    assertEquals([...reply.results.values()], ["deferred", "deferred"]);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "NOTIFY=SUCCESS recipients are traced, and a failed bounce log defers instead",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    bounce.append = (log, queueId, rcpt, dsn) => {
      bounce.calls.push({ kind: "append", log, queueId, rcpt: rcpt.address, dsn });
      return Promise.resolve(log !== "bounce");
    };
    const id = writeMessage(
      q,
      { recipients: ["a@example.com", "b@example.com"], notify: 2 | 4 },
      "active",
    );
    const agent = await serveAgent(
      q.dir,
      { layout: q.layout, bounce, resolution: 2 },
      async (s) => {
        await s.sent(s.request.recipients[0], { dsn: "2.0.0", relay: "local", text: "ok" });
        await s.bounced(s.request.recipients[1], {
          dsn: "5.1.1",
          relay: "local",
          text: "unknown user",
        });
      },
    );
    const log = await withLog(async (lines) => {
      const reply = await sendDeliverRequest(agent.path, requestFor(q, id));
      assert(reply.traced);
      assertEquals([...reply.results.values()], ["sent", "deferred"]);
      return lines.join("\n");
    });
    await agent.close();
    assertStringIncludes(log, "dsn=4.3.0, status=deferred (bounce or trace service failure)");
    assertEquals(bounce.calls[0].log, "trace");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("a malformed delivery request is refused with a warning", opts, async () => {
  const q = await makeQueue();
  const agent = await serveAgent(q.dir, {
    layout: q.layout,
    bounce: recordingBounce(),
    resolution: 2,
  }, () => {
    throw new Error("not reached");
  });
  const log = await withLog(async (lines) => {
    await assertRejects(() =>
      sendDeliverRequest(agent.path, {
        ...requestFor(q, writeMessage(q, { recipients: ["a@x.test"] }, "active")),
        queueId: "../etc",
      })
    );
    return lines.join("\n");
  });
  await agent.close();
  assertStringIncludes(log, "warning: bad delivery request: bad queue_id attribute");
  await Deno.remove(q.dir, { recursive: true });
});
