// The delivery log line and its delay formatting.

import { assertEquals } from "../../assert.ts";
import { deliveryLogLine, formatDelay, formatDelays } from "../../../lib/deliver/log_line.ts";

Deno.test("formatDelay() prints integers from 10 s and two significant digits below", () => {
  assertEquals(formatDelay(0), "0");
  assertEquals(formatDelay(0.001), "0");
  assertEquals(formatDelay(0.04), "0.04");
  assertEquals(formatDelay(0.6), "0.6");
  assertEquals(formatDelay(0.193), "0.19");
  assertEquals(formatDelay(1.13), "1.1");
  assertEquals(formatDelay(9.96), "10");
  assertEquals(formatDelay(39.4), "39");
  assertEquals(formatDelay(2345.6), "2346");
  assertEquals(formatDelay(-1), "0");
});

Deno.test("formatDelay() honours delay_logging_resolution_limit", () => {
  assertEquals(formatDelay(0.04, 1), "0");
  assertEquals(formatDelay(0.16, 1), "0.2");
  assertEquals(formatDelay(0.16, 0), "0");
});

Deno.test("formatDelays() splits the delay before, in qmgr, in connection setup and in transmission", () => {
  const t = { arrival: 100, active: 100.04, agentStart: 100.05, connSetup: 100.1 };
  assertEquals(formatDelays(t, 100.19), "delay=0.19, delays=0.04/0.01/0.05/0.09");
});

Deno.test("deliveryLogLine() writes orig_to only when it differs", () => {
  const times = { arrival: 0, active: 0, agentStart: 0, connSetup: 0 };
  const base = {
    queueId: "3F2A81B2C",
    relay: "none",
    times,
    dsn: "5.0.0",
    status: "bounced",
    text: "no way",
  };
  assertEquals(
    deliveryLogLine({ ...base, recipient: "a@b.example", origRecipient: "c@b.example" }, 12),
    "3F2A81B2C: to=<a@b.example>, orig_to=<c@b.example>, relay=none, delay=12, delays=0/0/0/12, dsn=5.0.0, status=bounced (no way)",
  );
  assertEquals(
    deliveryLogLine({ ...base, recipient: "a@b.example", origRecipient: "a@b.example" }, 0),
    "3F2A81B2C: to=<a@b.example>, relay=none, delay=0, delays=0/0/0/0, dsn=5.0.0, status=bounced (no way)",
  );
});
