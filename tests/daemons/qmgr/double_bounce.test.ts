// Mail to the local double-bounce address is discarded by qmgr itself, as
// Postfix's qmgr does: logged as sent, never handed to an agent.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { makeQueue, queueFiles, recordingBounce, withLog, writeMessage } from "./helpers.ts";
import { Qmgr } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";
import { configFromText } from "../../../lib/config/mod.ts";

Deno.test("qmgr discards local mail to double-bounce and delivers the rest", async () => {
  const q = await makeQueue();
  const id = writeMessage(q, {
    sender: "",
    recipients: ["Double-Bounce@mx.example.com", "postmaster@mx.example.com"],
  });
  const delivered: string[] = [];
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, "")),
    resolve: (_s, address) =>
      Promise.resolve({
        transport: "local",
        nexthop: "mx.example.com",
        recipient: address,
        flags: 1 << 8,
      }),
    deliver: (_t, req) => {
      delivered.push(...req.recipients.map((r) => r.address));
      return Promise.resolve({
        status: 0,
        hopStatus: "",
        hopReason: "",
        results: new Map(req.recipients.map((r) => [r.offset, "sent" as const])),
        traced: false,
      });
    },
    bounce: recordingBounce(),
  });
  const log = await withLog(async (lines) => {
    await qmgr.start();
    await qmgr.idle();
    return lines.join("\n");
  });
  qmgr.stop();
  assertEquals(delivered, ["postmaster@mx.example.com"]);
  assertStringIncludes(
    log,
    `${id}: to=<Double-Bounce@mx.example.com>, relay=none, delay=`,
  );
  assertStringIncludes(
    log,
    "dsn=2.0.0, status=sent (undeliverable postmaster notification discarded)",
  );
  assertStringIncludes(log, `${id}: removed`);
  assertEquals(queueFiles(q, "deferred"), []);
});
