// reject_unknown_sender_domain / reject_unknown_recipient_domain with the
// system resolver: a .invalid domain (RFC 6761: never exists) is rejected
// with unknown_address_reject_code; a domain this host receives mail for
// is not looked up.

import { assertEquals } from "../../assert.ts";
import { session, start, stop } from "./helpers.ts";

Deno.test({
  name:
    "reject_unknown_sender_domain and reject_unknown_recipient_domain refuse domains that do not exist",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
        "smtpd_relay_restrictions = reject_unknown_recipient_domain, permit_mynetworks, reject_unauth_destination\n",
    );
    try {
      const r = await session(inst.port, [
        "EHLO x",
        "MAIL FROM:<a@nowhere.invalid>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "MAIL FROM:<a@mx.example.com>",
        "RCPT TO:<u@mx.example.com>",
        "RCPT TO:<u@nowhere.invalid>",
      ]);
      assertEquals(
        r[3],
        "450 4.1.8 <a@nowhere.invalid>: Sender address rejected: Domain not found",
      );
      assertEquals(r[6], "250 2.1.5 Ok");
      assertEquals(
        r[7],
        "450 4.1.2 <u@nowhere.invalid>: Recipient address rejected: Domain not found",
      );
    } finally {
      await stop(inst);
    }
  },
});
