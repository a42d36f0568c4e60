// defer_if_permit, defer_if_reject, reject_plaintext_session and sleep as
// restrictions (here through restriction classes chosen by an access
// table); the replies and log lines are the reference smtpd's.

import { assertEquals } from "../../assert.ts";
import { logHas, session, start, stop } from "./helpers.ts";

Deno.test({
  name: "defer_if_permit, defer_if_reject and reject_plaintext_session reply as the reference",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(`relay_domains = ok.example
smtpd_restriction_classes = dip dir pps
dip = sleep 0, defer_if_permit
dir = defer_if_reject, reject
pps = reject_plaintext_session
smtpd_recipient_restrictions = check_recipient_access inline:{a@ok.example=dip,b@ok.example=dir,c@ok.example=pps}, permit_tls_clientcerts, check_ccert_access inline:{x=REJECT}
`);
    try {
      const got = await session(inst.port, [
        "HELO y",
        "MAIL FROM:<x@ok.example>",
        "RCPT TO:<a@ok.example>",
        "RCPT TO:<b@ok.example>",
        "RCPT TO:<c@ok.example>",
        "RCPT TO:<d@ok.example>",
        "QUIT",
      ]);
      assertEquals(got.slice(3), [
        "450 4.7.0 <a@ok.example>: Recipient address rejected: defer_if_permit requested",
        "450 4.7.0 <b@ok.example>: Recipient address rejected: defer_if_reject requested",
        "450 4.7.1 Session encryption is required",
        "250 2.1.5 Ok",
        "221 2.0.0 Bye",
      ]);
      const log = await logHas(inst, "Session encryption is required;");
      assertEquals(
        log.includes(
          "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 450 4.7.1 Session encryption is " +
            "required; from=<x@ok.example> to=<c@ok.example> proto=SMTP helo=<y>",
        ),
        true,
      );
    } finally {
      await stop(inst);
    }
  },
});
