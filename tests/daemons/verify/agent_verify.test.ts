// Delivery sessions in verify mode (lib/deliver/agent.ts) and the probes qmgr
// settles itself: a verify probe's outcome goes to the verify service, a
// sendmail -bv outcome to the trace log, both logged as deliverable or
// undeliverable and marked done; sendmail -v records real outcomes too.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { run } from "../cleanup/helpers.ts";
import { rec } from "../cleanup/helpers.ts";
import { makeQueue, recordingBounce, type TestQueue, withLog } from "../qmgr/helpers.ts";
import { DeliverySession } from "../../../lib/deliver/agent.ts";
import { DeliverFlag, type DeliverRequest } from "../../../lib/deliver/request.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { Qmgr, TransportUnavailable } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { AddrStatus } from "../../../lib/verify_client.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";

let serial = 0;

/** The log lines written while `fn` runs. */
function logOf(fn: () => Promise<unknown>): Promise<string[]> {
  return withLog(async (lines) => {
    await fn();
    return lines;
  });
}

/** A queue file made by cleanup with trace flags, in incoming; its id. */
async function queueMessage(q: TestQueue, flags: number, rcpts: string[]): Promise<string> {
  const r = await run({
    envelope: flags ? [rec("A", `trace_flags=${flags}`)] : [],
    recipients: rcpts,
    text: "Subject: probe\n",
  });
  const id = `B${(0x10000 + serial++).toString(16).toUpperCase()}`;
  Deno.writeFileSync(queueFilePath(q.layout, "incoming", id), r.file!, { mode: 0o700 });
  return id;
}

/** A request for every recipient of a queued message. */
function requestFor(q: TestQueue, id: string): DeliverRequest {
  const m = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "incoming", id)));
  return {
    flags: m.traceFlags,
    queueName: "incoming",
    queueId: id,
    dataOffset: m.dataOffset,
    dataSize: m.size,
    nexthop: "example.com",
    encoding: "",
    smtputf8: 0,
    sender: m.sender,
    envid: "",
    ret: 0,
    arrival: m.arrival,
    active: m.arrival,
    attrs: {},
    recipients: m.recipients,
  };
}

function recordTypes(q: TestQueue, id: string): string {
  return decodeRecords(Deno.readFileSync(queueFilePath(q.layout, "incoming", id)))
    .filter((r) => r.type === "R" || r.type === "D").map((r) => r.type).join("");
}

Deno.test("a verify probe's outcomes go to the verify service, logged deliverable/undeliverable, marked done", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.MTA_VRFY, [
    "ok@example.com",
    "bad@example.com",
    "later@example.com",
  ]);
  const bounce = recordingBounce();
  const updates: [string, number, string][] = [];
  const session = new DeliverySession(requestFor(q, id), {
    layout: q.layout,
    bounce,
    resolution: 2,
    verify: (a, s, w) => (updates.push([a, s, w]), Promise.resolve(true)),
  });
  assert(session.verifyOnly);
  const [ok, bad, later] = session.request.recipients;
  const lines = await logOf(async () => {
    await session.sent(ok, { dsn: "2.0.0", relay: "local", text: "delivers to mailbox" });
    await session.bounced(bad, { dsn: "5.1.1", relay: "local", text: "unknown user" });
    await session.deferred(later, { dsn: "4.4.1", relay: "none", text: "try again" });
  });
  session.close();
  assertEquals(updates, [
    ["ok@example.com", AddrStatus.OK, "delivers to mailbox"],
    ["bad@example.com", AddrStatus.BOUNCE, "unknown user"],
    ["later@example.com", AddrStatus.DEFER, "try again"],
  ]);
  assertEquals(bounce.calls, []);
  const log = lines.join("\n");
  assertStringIncludes(log, "dsn=2.0.0, status=deliverable (delivers to mailbox)");
  assertStringIncludes(log, "dsn=5.1.1, status=undeliverable (unknown user)");
  assertStringIncludes(log, "dsn=4.4.1, status=undeliverable (try again)");
  assertEquals(recordTypes(q, id), "DDD");
  const reply = session.reply();
  assertEquals([...reply.results.values()], ["sent", "sent", "sent"]);
});

Deno.test("a probe updates the original recipient and the rewritten one", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.MTA_VRFY, ["Alias@example.com"]);
  const req = requestFor(q, id);
  req.recipients[0].address = "user@example.net";
  const updates: string[] = [];
  const session = new DeliverySession(req, {
    layout: q.layout,
    bounce: recordingBounce(),
    resolution: 2,
    verify: (a) => (updates.push(a), Promise.resolve(true)),
  });
  await logOf(() => session.sent(req.recipients[0], { dsn: "2.0.0", relay: "x", text: "ok" }));
  session.close();
  assertEquals(updates, ["Alias@example.com", "user@example.net"]);
});

Deno.test("without negative caching a failed probe is logged undeliverable-but-not-cached", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.MTA_VRFY, ["bad@example.com"]);
  const updates: string[] = [];
  const session = new DeliverySession(requestFor(q, id), {
    layout: q.layout,
    bounce: recordingBounce(),
    resolution: 2,
    verify: (a) => (updates.push(a), Promise.resolve(true)),
    verifyNegativeCache: false,
  });
  const lines = await logOf(() =>
    session.bounced(session.request.recipients[0], { dsn: "5.1.1", relay: "none", text: "no" })
  );
  session.close();
  assertEquals(updates, []);
  assertStringIncludes(lines.join("\n"), "status=undeliverable-but-not-cached (no)");
});

Deno.test("when the verify service fails the probe recipient stays deferred", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.MTA_VRFY, ["ok@example.com"]);
  const session = new DeliverySession(requestFor(q, id), {
    layout: q.layout,
    bounce: recordingBounce(),
    resolution: 2,
    verify: () => Promise.resolve(false),
  });
  const lines = await logOf(() =>
    session.sent(session.request.recipients[0], { dsn: "2.0.0", relay: "none", text: "ok" })
  );
  session.close();
  assertStringIncludes(lines.join("\n"), `warning: ${id}: verify service failure`);
  assertEquals(recordTypes(q, id), "R");
  assertEquals([...session.reply().results.values()], ["deferred"]);
});

Deno.test("sendmail -bv outcomes go to the trace log, naming the agent that would deliver", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.USR_VRFY, ["ok@example.com", "bad@example.com"]);
  const bounce = recordingBounce();
  const session = new DeliverySession(requestFor(q, id), {
    layout: q.layout,
    bounce,
    resolution: 2,
    verify: () => Promise.reject(new Error("not for -bv")),
  });
  const [ok, bad] = session.request.recipients;
  const lines = await logOf(async () => {
    await session.sent(ok, { dsn: "2.0.0", relay: "local", text: "delivers to mailbox" });
    await session.bounced(bad, { dsn: "5.1.1", relay: "none", text: "unknown user" });
  });
  session.close();
  assertEquals(
    bounce.calls.map((c) => [c.log, c.rcpt, c.dsn?.action, c.dsn?.reason]),
    [
      ["trace", "ok@example.com", "deliverable", "delivery via local: delivers to mailbox"],
      ["trace", "bad@example.com", "undeliverable", "unknown user"],
    ],
  );
  assertStringIncludes(lines.join("\n"), "status=deliverable (delivers to mailbox)");
  assertEquals(recordTypes(q, id), "DD");
  assert(session.reply().traced);
});

Deno.test("sendmail -v delivers and records each outcome in the trace log", async () => {
  const q = await makeQueue();
  const id = await queueMessage(q, DeliverFlag.RECORD, ["ok@example.com", "bad@example.com"]);
  const bounce = recordingBounce();
  const session = new DeliverySession(requestFor(q, id), {
    layout: q.layout,
    bounce,
    resolution: 2,
  });
  assert(!session.verifyOnly);
  const [ok, bad] = session.request.recipients;
  const lines = await logOf(async () => {
    await session.sent(ok, { dsn: "2.0.0", relay: "none", text: "delivered nowhere" });
    await session.bounced(bad, { dsn: "5.1.1", relay: "none", text: "unknown user" });
  });
  session.close();
  assertEquals(bounce.calls.map((c) => [c.log, c.rcpt, c.dsn?.action]), [
    ["trace", "ok@example.com", "delivered"],
    ["trace", "bad@example.com", "failed"],
    ["bounce", "bad@example.com", "failed"],
  ]);
  assertStringIncludes(lines.join("\n"), "status=sent (delivered nowhere)");
  assertStringIncludes(lines.join("\n"), "status=bounced (unknown user)");
});

Deno.test("qmgr settles a probe for an unavailable transport itself and removes it", async () => {
  const q = await makeQueue();
  const probe = await queueMessage(q, DeliverFlag.MTA_VRFY, ["user@example.com"]);
  const bv = await queueMessage(q, DeliverFlag.USR_VRFY, ["user@example.com"]);
  const bounce = recordingBounce();
  const updates: [string, number, string][] = [];
  const resolved: string[] = [];
  const resolve = (kind: string) => (_s: string, address: string) => {
    resolved.push(kind);
    return Promise.resolve({
      transport: "smtp",
      nexthop: "example.com",
      recipient: address,
      flags: 0,
    });
  };
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, "")),
    resolve: resolve("resolve"),
    resolveVerify: resolve("verify"),
    deliver: () => Promise.reject(new TransportUnavailable("connect to transport private/smtp")),
    bounce,
    verify: (a, s, w) => (updates.push([a, s, w]), Promise.resolve(true)),
  });
  const lines = await logOf(async () => {
    await qmgr.start();
    await qmgr.idle();
  });
  qmgr.stop();
  assertEquals(resolved.sort(), ["resolve", "verify"]);
  assertEquals(updates, [["user@example.com", AddrStatus.DEFER, "mail transport unavailable"]]);
  const log = lines.join("\n");
  assertStringIncludes(log, `${probe}: to=<user@example.com>, relay=none`);
  assertStringIncludes(log, "dsn=4.3.0, status=undeliverable (mail transport unavailable)");
  assertStringIncludes(log, `${probe}: removed`);
  assertStringIncludes(log, `${bv}: removed`);
  // sendmail -bv: the trace log entry and the report.
  const trace = bounce.calls.filter((c) => c.queueId === bv);
  assertEquals(trace.map((c) => [c.kind, c.log, c.dsn?.action]), [
    ["append", "trace", "undeliverable"],
    ["flush", "trace", undefined],
  ]);
  assert(!bounce.calls.some((c) => c.log === "defer"));
});

Deno.test("qmgr sends an address the resolver calls bad to the error service", async () => {
  const q = await makeQueue();
  await queueMessage(q, DeliverFlag.MTA_VRFY, ["-bad@example.com"]);
  const asked: [string, string][] = [];
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, "")),
    resolve: (_s, address) =>
      Promise.resolve({ transport: "smtp", nexthop: "example.com", recipient: address, flags: 4 }),
    deliver: (transport, req) => {
      asked.push([transport, req.nexthop]);
      const session = new DeliverySession(req, {
        layout: q.layout,
        bounce: recordingBounce(),
        resolution: 2,
        verify: () => Promise.resolve(true),
      });
      return session.bounced(req.recipients[0], { dsn: "5.1.3", relay: "none", text: "x" })
        .then(() => session.reply()).finally(() => session.close());
    },
    bounce: recordingBounce(),
  });
  await logOf(async () => {
    await qmgr.start();
    await qmgr.idle();
  });
  qmgr.stop();
  assertEquals(asked, [["error", "5.1.3 bad address syntax"]]);
});

Deno.test("probes beyond address_verify_pending_request_limit are tempfailed through retry", async () => {
  const q = await makeQueue();
  for (let i = 0; i < 3; i++) await queueMessage(q, DeliverFlag.MTA_VRFY, [`u${i}@example.com`]);
  const asked: [string, string][] = [];
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, "address_verify_pending_request_limit = 2\n")),
    resolve: (_s, address) =>
      Promise.resolve({ transport: "smtp", nexthop: "example.com", recipient: address, flags: 0 }),
    deliver: (transport, req) => {
      asked.push([transport, req.nexthop]);
      const session = new DeliverySession(req, {
        layout: q.layout,
        bounce: recordingBounce(),
        resolution: 2,
        verify: () => Promise.resolve(true),
      });
      return session.sent(req.recipients[0], { dsn: "2.0.0", relay: "none", text: "x" })
        .then(() => session.reply()).finally(() => session.close());
    },
    bounce: recordingBounce(),
  });
  await logOf(async () => {
    await qmgr.start();
    await qmgr.idle();
  });
  qmgr.stop();
  assertEquals(asked.sort(), [
    ["retry", "4.3.2 Too many address verification requests"],
    ["smtp", "example.com"],
    ["smtp", "example.com"],
  ]);
});
