// A client rejected before any command (smtpd_delay_reject = no): the
// rejection takes the greeting's place (or XCLIENT's reply) and every later
// command but QUIT gets "503 5.7.0 Error: access denied for ...". XCLIENT
// NAME=[TEMPUNAVAIL] makes reject_unknown_client_hostname a 450. The
// expected replies and log lines are the reference smtpd's.

import { assertEquals } from "../../assert.ts";
import { logHas, session, start, stop } from "./helpers.ts";

const denied = "503 5.7.0 Error: access denied for localhost[127.0.0.1]";

Deno.test({
  name: "after a rejection at connect every command but QUIT is refused",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n" +
        "smtpd_authorized_xclient_hosts = 127.0.0.1\n",
    );
    try {
      const got = await session(inst.port, [
        "NOOP",
        "EHLO y",
        "MAIL FROM:<b@example.com>",
        "RCPT TO:<u@example.com>",
        "XCLIENT NAME=foo",
        "EHLO x",
        "QUIT",
      ]);
      assertEquals(got, [
        "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied",
        denied,
        denied,
        denied,
        denied,
        denied,
        denied,
        "221 2.0.0 Bye",
      ]);
      const log = await logHas(inst, "commands=1/7");
      assertEquals(
        log.includes(
          "disconnect from localhost[127.0.0.1] ehlo=0/2 xclient=0/1 mail=0/1 rcpt=0/1 noop=0/1 " +
            "quit=1 commands=1/7",
        ),
        true,
      );
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  name:
    "XCLIENT NAME=[TEMPUNAVAIL] makes reject_unknown_client_hostname defer, then access is denied",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject_unknown_client_hostname\n" +
        "smtpd_authorized_xclient_hosts = 127.0.0.1\n",
    );
    try {
      const got = await session(inst.port, [
        "XCLIENT NAME=[TEMPUNAVAIL]",
        "EHLO y",
        "MAIL FROM:<b@example.com>",
        "RCPT TO:<u@example.com>",
        "DATA",
        "VRFY u@example.com",
        "RSET",
        "XCLIENT NAME=localhost",
        "QUIT",
      ]);
      const gone = "503 5.7.0 Error: access denied for unknown[127.0.0.1]";
      assertEquals(got.slice(1), [
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]",
        gone,
        gone,
        gone,
        gone,
        gone,
        gone,
        gone,
        "221 2.0.0 Bye",
      ]);
      const log = await logHas(inst, "reject: XCLIENT");
      assertEquals(
        log.includes(
          "NOQUEUE: reject: XCLIENT from unknown[127.0.0.1]: 450 4.7.25 Client host rejected: " +
            "cannot find your hostname, [127.0.0.1]; proto=SMTP",
        ),
        true,
      );
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  name: "XCLIENT NAME=[UNAVAILABLE] is a permanent lookup failure",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_client_restrictions = reject_unknown_client_hostname\n" +
        "smtpd_authorized_xclient_hosts = 127.0.0.1\nunknown_client_reject_code = 550\n",
    );
    try {
      const got = await session(inst.port, [
        "XCLIENT NAME=[UNAVAILABLE]",
        "EHLO y",
        "MAIL FROM:<b@example.com>",
        "RCPT TO:<u@example.com>",
        "RSET",
        "XCLIENT NAME=[TEMPUNAVAIL]",
        "EHLO y",
        "MAIL FROM:<b@example.com>",
        "RCPT TO:<u@example.com>",
        "QUIT",
      ]);
      assertEquals(
        got[4],
        "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]",
      );
      assertEquals(
        got[9],
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]",
      );
    } finally {
      await stop(inst);
    }
  },
});
