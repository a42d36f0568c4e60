// anvil: counters and rates per client identity, and smtpd's connection
// count limit enforced through it.

import { assertEquals, assertStringIncludes } from "../assert.ts";
import { AnvilState } from "../../daemons/anvil.ts";
import { Client, logHas, start, stop } from "./smtpd/helpers.ts";

Deno.test("AnvilState counts connections and rates within the time unit", () => {
  let now = 0;
  const a = new AnvilState(60000, () => now);
  assertEquals(a.handle("connect", "smtp:1.2.3.4"), { status: 0, count: 1, rate: 1 });
  assertEquals(a.handle("connect", "smtp:1.2.3.4"), { status: 0, count: 2, rate: 2 });
  assertEquals(a.handle("message", "smtp:1.2.3.4"), { status: 0, rate: 1 });
  assertEquals(a.handle("recipient", "smtp:1.2.3.4"), { status: 0, rate: 1 });
  a.handle("disconnect", "smtp:1.2.3.4");
  now = 61000;
  assertEquals(a.handle("connect", "smtp:1.2.3.4"), { status: 0, count: 2, rate: 1 });
  assertEquals(a.handle("bogus", "smtp:1.2.3.4"), { status: -1 });
});

Deno.test({
  name: "smtpd_client_connection_count_limit refuses the connection over the limit with 421",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions =\n" +
        "smtpd_client_message_rate_limit = 2",
      { anvil: true },
    );
    try {
      // The start-up probe's connection must be gone from anvil's count first.
      await logHas(inst, "disconnect from localhost");
      await new Promise((r) => setTimeout(r, 100));
      const a = await Client.connect(inst.port);
      const b = await Client.connect(inst.port);
      assertEquals((await a.reply()).slice(0, 4), "220 ");
      assertEquals((await b.reply()).slice(0, 4), "220 ");
      const c = await Client.connect(inst.port);
      assertEquals(
        await c.reply(),
        "421 4.7.0 mx.example.com Error: too many connections from 127.0.0.1",
      );
      c.close();
      assertStringIncludes(
        await logHas(inst, "Connection concurrency limit exceeded"),
        "warning: Connection concurrency limit exceeded: 3 from localhost[127.0.0.1] for service smtp",
      );
      // Message rate: the third MAIL within the time unit ends the session.
      await a.cmd("EHLO x");
      assertEquals(await a.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
      await a.cmd("RSET");
      assertEquals(await a.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
      await a.cmd("RSET");
      assertEquals(
        await a.cmd("MAIL FROM:<a@b>"),
        "421 4.7.0 mx.example.com Error: too much mail from 127.0.0.1",
      );
      a.close();
      b.close();
    } finally {
      await stop(inst);
    }
  },
});
