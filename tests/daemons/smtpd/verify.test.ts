// reject_unverified_sender and reject_unverified_recipient against a verify
// service the test serves (the address_verification protocol of
// lib/verify_client.ts): each address's local part picks the answer. The
// expected replies are the reference smtpd's for the same statuses.

import { assertEquals } from "../../assert.ts";
import { AttrReader, encodeAttrs } from "../../../lib/ipc/attr.ts";
import { VERIFY_PROTOCOL } from "../../../lib/verify_client.ts";
import { logHas, session, start, stop } from "./helpers.ts";

/** Answers per local part: [request status, address status, reason]. */
const ANSWERS: Record<string, [number, number, string]> = {
  ok: [0, 0, "delivered"],
  soft: [0, 1, "try later"],
  bounce: [0, 2, "no such user"],
  todo: [0, 3, ""],
  broken: [-1, 0, ""],
};

/** Serves the verify protocol on `path` until the listener is closed; requests are recorded. */
function fakeVerify(path: string, requests: string[]): Deno.Listener {
  const listener = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.write(encodeAttrs({ protocol: VERIFY_PROTOCOL }));
        const reader = new AttrReader();
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          for (const list of reader.push(buf.subarray(0, n))) {
            const address = list.get("address") ?? "";
            requests.push(`${list.get("request")} ${address}`);
            const [stat, status, reason] = ANSWERS[address.split("@")[0]] ?? [0, 0, ""];
            await conn.write(encodeAttrs({ status: stat, recipient_status: status, reason }));
          }
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  return listener;
}

const cf = `relay_domains = example.net
smtpd_sender_restrictions = reject_unverified_sender
smtpd_recipient_restrictions = reject_unverified_recipient
address_verify_poll_count = 2
address_verify_poll_delay = 1s
`;

Deno.test({
  name: "reject_unverified_recipient maps each verify status to the reference's reply",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(cf);
    const requests: string[] = [];
    const listener = fakeVerify(`${inst.dir}/queue/private/verify`, requests);
    try {
      const got = await session(inst.port, [
        "EHLO client.example",
        "MAIL FROM:<ok@example.net>",
        "RCPT TO:<ok@example.net>",
        "RCPT TO:<soft@example.net>",
        "RCPT TO:<bounce@example.net>",
        "RCPT TO:<todo@example.net>",
        "QUIT",
      ]);
      assertEquals(got.slice(2), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "450 4.1.1 <soft@example.net>: Recipient address rejected: unverified address: try later",
        "450 4.1.1 <bounce@example.net>: Recipient address rejected: unverified address: no such user",
        "450 4.1.1 <todo@example.net>: Recipient address rejected: unverified address: ",
        "221 2.0.0 Bye",
      ]);
      // A probe in progress is asked again after address_verify_poll_delay.
      assertEquals(requests.filter((r) => r === "query todo@example.net").length, 2);
      // A recipient was accepted first: the stream is open, the line carries its queue id.
      const log = await logHas(inst, "bounce@example.net>: Recipient address rejected");
      const line = log.split("\n").find((l) => l.includes("<bounce@example.net>: Recipient"));
      assertEquals(
        line?.replace(/^.*smtpd\[\d+\]: [0-9A-F]+: /, "QUEUEID: "),
        "QUEUEID: reject: RCPT from localhost[127.0.0.1]: 450 4.1.1 <bounce@example.net>: " +
          "Recipient address rejected: unverified address: no such user; " +
          "from=<ok@example.net> to=<bounce@example.net> proto=ESMTP helo=<client.example>",
      );
    } finally {
      listener.close();
      await stop(inst);
    }
  },
});

Deno.test({
  name: "reject_unverified_* use the 5xx reject code, the reject reason and the tempfail action",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      cf + `unverified_recipient_reject_code = 550
unverified_recipient_reject_reason = Recipient unknown here
unverified_sender_reject_code = 550
unverified_recipient_tempfail_action = defer
address_verify_poll_count = 1
`,
    );
    const listener = fakeVerify(`${inst.dir}/queue/private/verify`, []);
    try {
      const got = await session(inst.port, [
        "EHLO client.example",
        "MAIL FROM:<bounce@example.net>",
        "RCPT TO:<ok@example.net>",
        "RSET",
        "MAIL FROM:<soft@example.net>",
        "RCPT TO:<ok@example.net>",
        "RSET",
        "MAIL FROM:<>",
        "RCPT TO:<bounce@example.net>",
        "RCPT TO:<soft@example.net>",
        "RCPT TO:<broken@example.net>",
        "QUIT",
      ]);
      assertEquals(got.slice(2), [
        "250 2.1.0 Ok",
        "550 5.1.7 <bounce@example.net>: Sender address rejected: undeliverable address: no such user",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
        "450 4.1.7 <soft@example.net>: Sender address rejected: unverified address: try later",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
        "550 5.1.1 <bounce@example.net>: Recipient address rejected: undeliverable address: Recipient unknown here",
        "450 4.1.1 <soft@example.net>: Recipient address rejected: unverified address: Recipient unknown here",
        "450 4.1.1 <broken@example.net>: Recipient address rejected: address verification problem",
        "221 2.0.0 Bye",
      ]);
      await logHas(inst, "verify service failure");
    } finally {
      listener.close();
      await stop(inst);
    }
  },
});

Deno.test({
  name: "with defer_if_permit a verify deferral loses to a later rejection",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      cf.replace(
        "smtpd_recipient_restrictions = reject_unverified_recipient",
        "smtpd_recipient_restrictions = reject_unverified_recipient, reject",
      ),
    );
    const listener = fakeVerify(`${inst.dir}/queue/private/verify`, []);
    try {
      const got = await session(inst.port, [
        "EHLO client.example",
        "MAIL FROM:<ok@example.net>",
        "RCPT TO:<soft@example.net>",
        "QUIT",
      ]);
      assertEquals(
        got[3],
        "554 5.7.1 <soft@example.net>: Recipient address rejected: Access denied",
      );
    } finally {
      listener.close();
      await stop(inst);
    }
  },
});
