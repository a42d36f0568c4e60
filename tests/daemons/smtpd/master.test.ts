// smtpd as the master runs it: an inet service in master.cf, listening
// socket inherited from the master, cleanup, trivial-rewrite and anvil
// started on demand, a message queued through the whole chain.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { freePort, Instance, waitFor } from "../master/instance.ts";
import { session } from "./helpers.ts";

Deno.test({
  name: "smtpd under the master accepts and queues mail on its master.cf inet port",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const port = freePort();
    const inst = await Instance.create(
      `127.0.0.1:${port} inet n - n - - smtpd -o smtpd_client_connection_count_limit=2\n` +
        `cleanup unix n - n - 0 cleanup\n` +
        `rewrite unix - - n - - trivial-rewrite\n` +
        `anvil unix - - n - 1 anvil\n`,
      "myhostname = mx.example.com\nmydestination = $myhostname\nhash_queue_names =\nmail_name = Postfix\n" +
        "local_recipient_maps =\nsmtpd_error_sleep_time = 0\ncompatibility_level = 3.6\nmynetworks = 10.0.0.0/8",
    );
    try {
      const started = await inst.postfix("start");
      assertEquals(started.code, 0, started.stderr);
      // The master owns the listening socket from the start.
      const r = await session(port, [
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "RCPT TO:<x@elsewhere.example>",
        "DATA",
        "Subject: via master\r\n\r\nhello\r\n.",
        "QUIT",
      ]);
      assertEquals(r[0], "220 mx.example.com ESMTP Postfix");
      assertEquals(r[4], "454 4.7.1 <x@elsewhere.example>: Relay access denied");
      assert(r[6].startsWith("250 2.0.0 Ok: queued as "), r.join(" / ") + inst.readLog());
      const id = r[6].slice("250 2.0.0 Ok: queued as ".length);
      const log = await waitFor(() => inst.readLog().includes(`${id}: client=`) && inst.readLog());
      assertStringIncludes(log as string, "postfix/smtpd[");
      assert([...Deno.readDirSync(`${inst.queue}/incoming`)].some((e) => e.name === id));
    } finally {
      await inst.destroy();
    }
  },
});
