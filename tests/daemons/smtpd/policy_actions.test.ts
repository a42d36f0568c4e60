// check_policy_service over a unix socket (SMTPD_POLICY_README), the
// default action when the server is gone, and access actions (HOLD,
// DISCARD, FILTER, REDIRECT, PREPEND) reaching cleanup and the queue.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { incoming, logHas, session, start, stop } from "./helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const dec = new TextDecoder();

/** A policy server answering from the recipient; records every request. */
function policyServer(path: string, requests: Map<string, string>[]): { close(): void } {
  const listener = Deno.listen({ transport: "unix", path });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        let buf = "";
        const chunk = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(chunk).catch(() => null);
          if (n === null) break;
          buf += dec.decode(chunk.subarray(0, n));
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const attrs = new Map(
              buf.slice(0, end).split("\n").map((
                l,
              ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
            );
            buf = buf.slice(end + 2);
            requests.push(attrs);
            const rcpt = attrs.get("recipient") ?? "";
            const action = rcpt.startsWith("no@")
              ? "REJECT policy says no"
              : rcpt.startsWith("later@")
              ? "DEFER_IF_PERMIT try later"
              : rcpt.startsWith("code@")
              ? "550 5.7.9 coded refusal"
              : "DUNNO";
            await conn.write(new TextEncoder().encode(`action=${action}\n\n`));
          }
        }
        try {
          conn.close();
        } catch {
          // Closed by close().
        }
      })();
    }
  })();
  return {
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

Deno.test({
  ...opts,
  name: "check_policy_service asks the policy server and applies its action",
  async fn() {
    const inst = await start(
      "smtpd_recipient_restrictions = check_policy_service unix:DIR/policy, permit_mynetworks, reject_unauth_destination\n",
    );
    const requests: Map<string, string>[] = [];
    const listener = policyServer(`${inst.dir}/policy`, requests);
    try {
      const r = await session(inst.port, [
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<no@mx.example.com>",
        "RCPT TO:<code@mx.example.com>",
        "RCPT TO:<yes@mx.example.com>",
        "QUIT",
      ]);
      assertEquals(
        r[3],
        "554 5.7.1 <no@mx.example.com>: Recipient address rejected: policy says no",
      );
      assertEquals(
        r[4],
        "550 5.7.9 <code@mx.example.com>: Recipient address rejected: coded refusal",
      );
      assertEquals(r[5], "250 2.1.5 Ok");
      assertEquals(requests.length, 3);
      const q = requests[0];
      assertEquals(q.get("request"), "smtpd_access_policy");
      assertEquals(q.get("protocol_state"), "RCPT");
      assertEquals(q.get("protocol_name"), "ESMTP");
      assertEquals(q.get("helo_name"), "client.example");
      assertEquals(q.get("sender"), "a@example.org");
      assertEquals(q.get("recipient"), "no@mx.example.com");
      assertEquals(q.get("client_address"), "127.0.0.1");
      assertEquals(q.get("client_name"), "localhost");
    } finally {
      listener.close();
    }
    // With the server gone, smtpd_policy_service_default_action applies.
    Deno.removeSync(`${inst.dir}/policy`);
    try {
      const r = await session(inst.port, [
        "EHLO x",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<yes@mx.example.com>",
      ]);
      assertEquals(
        r[3],
        "451 4.3.5 <yes@mx.example.com>: Recipient address rejected: Server configuration problem",
      );
      assertStringIncludes(
        await logHas(inst, "problem talking to server"),
        "problem talking to server",
      );
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  ...opts,
  name:
    "access table HOLD, FILTER, REDIRECT and PREPEND reach the queue file; DISCARD queues nothing",
  async fn() {
    const inst = await start(
      "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/actions, permit_mynetworks, reject_unauth_destination\n",
    );
    Deno.writeTextFileSync(
      `${inst.dir}/actions`,
      "hold@mx.example.com HOLD\nfilter@mx.example.com FILTER smtp:[127.0.0.1]:10026\n" +
        "redirect@mx.example.com REDIRECT other@example.net\nprepend@mx.example.com PREPEND X-Tag: yes\n" +
        "discard@mx.example.com DISCARD\n",
    );
    try {
      const send = async (rcpt: string) => {
        const r = await session(inst.port, [
          "EHLO x",
          "MAIL FROM:<a@example.org>",
          `RCPT TO:<${rcpt}>`,
          "DATA",
          "Subject: t\r\n\r\nbody\r\n.",
          "QUIT",
        ]);
        return /queued as (\w+)/.exec(r[5])?.[1] ?? r[5];
      };
      const records = (id: string, queue = "incoming") =>
        decodeRecords(readQueueFile(`${inst.layout.queueDirectory}/${queue}/${id}`)).map((x) => ({
          type: x.type,
          text: dec.decode(x.data),
        }));
      const filter = records(await send("filter@mx.example.com"));
      assert(filter.some((x) => x.type === "L" && x.text === "smtp:[127.0.0.1]:10026"));
      const redirect = records(await send("redirect@mx.example.com"));
      assert(redirect.some((x) => x.type === ">" && x.text === "other@example.net"));
      const prepend = records(await send("prepend@mx.example.com"));
      assert(prepend.some((x) => x.type === "N" && x.text === "X-Tag: yes"));
      const held = await send("hold@mx.example.com");
      assert(records(held, "hold").some((x) => x.type === "R"));
      const before = incoming(inst).length;
      const discarded = await send("discard@mx.example.com");
      assert(/^[0-9A-Za-z]+$/.test(discarded), discarded);
      assertEquals(incoming(inst).length, before);
      const log = await logHas(inst, "triggers DISCARD action");
      assertStringIncludes(
        log,
        "hold: RCPT from localhost[127.0.0.1]: <hold@mx.example.com>: Recipient address triggers HOLD action",
      );
    } finally {
      await stop(inst);
    }
  },
});
