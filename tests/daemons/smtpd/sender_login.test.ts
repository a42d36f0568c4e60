// smtpd_sender_login_maps with the reject_*_sender_login_mismatch
// restrictions, and check_sasl_access. The login comes from XCLIENT LOGIN;
// the session and its replies are the reference smtpd's (with a Dovecot
// auth socket, as the reference needs one to enable SASL at all).

import { assertEquals } from "../../assert.ts";
import { logHas, session, start, stop } from "./helpers.ts";

const cf = `relay_domains = ok.example
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = DIR/no-auth
smtpd_sender_login_maps = texthash:DIR/logins
smtpd_sender_restrictions = check_sasl_access texthash:DIR/sasl_access, reject_sender_login_mismatch
`;

function tables(dir: string): void {
  Deno.writeTextFileSync(
    `${dir}/logins`,
    "alice@ok.example alice\nbob@ok.example bob, alice\n@shared.example carol\n<> dave\n",
  );
  Deno.writeTextFileSync(`${dir}/sasl_access`, "alice REJECT no alice today\nbob OK\n");
}

const rcpt = "RCPT TO:<u@ok.example>";

Deno.test({
  name: "reject_sender_login_mismatch and check_sasl_access reply as the reference does",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(cf);
    tables(inst.dir);
    try {
      const lines = [
        "EHLO y",
        ...["alice@ok.example", "free@ok.example", "", "x@shared.example"].flatMap((
          a,
        ) => [`MAIL FROM:<${a}>`, rcpt, "RSET"]),
        "XCLIENT LOGIN=carol",
        "EHLO y",
        ...["alice@ok.example", "free@ok.example", "x@shared.example", "alice+ext@ok.example", ""]
          .flatMap((a) => [`MAIL FROM:<${a}>`, rcpt, "RSET"]),
        "XCLIENT LOGIN=alice",
        "EHLO y",
        ...["bob@ok.example"].flatMap((a) => [`MAIL FROM:<${a}>`, rcpt, "RSET"]),
        "XCLIENT LOGIN=bob",
        "EHLO y",
        ...["free@ok.example"].flatMap((a) => [`MAIL FROM:<${a}>`, rcpt, "RSET"]),
        "QUIT",
      ];
      const got = (await session(inst.port, lines)).filter((r) => !r.startsWith("250-"));
      const ok = ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok"];
      const no = (text: string) => ["250 2.1.0 Ok", text, "250 2.0.0 Ok"];
      assertEquals(got, [
        "220 mx.example.com ESMTP Postfix",
        ...no("553 5.7.1 <alice@ok.example>: Sender address rejected: not logged in"),
        ...ok,
        ...ok,
        ...no("553 5.7.1 <x@shared.example>: Sender address rejected: not logged in"),
        "220 mx.example.com ESMTP Postfix",
        ...no("553 5.7.1 <alice@ok.example>: Sender address rejected: not owned by user carol"),
        ...no("553 5.7.1 <free@ok.example>: Sender address rejected: not owned by user carol"),
        ...ok,
        ...no(
          "553 5.7.1 <alice+ext@ok.example>: Sender address rejected: not owned by user carol",
        ),
        ...ok,
        "220 mx.example.com ESMTP Postfix",
        ...no("554 5.7.1 <alice>: SASL login name rejected: no alice today"),
        "220 mx.example.com ESMTP Postfix",
        ...ok,
        "221 2.0.0 Bye",
      ]);
      const log = await logHas(inst, "SASL login name rejected");
      assertEquals(
        log.includes(
          "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 553 5.7.1 <alice@ok.example>: " +
            "Sender address rejected: not owned by user carol; from=<alice@ok.example> " +
            "to=<u@ok.example> proto=ESMTP helo=<y>",
        ),
        true,
      );
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  name: "the known and the unauthenticated variants check only what they name",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      cf.replace(
        /^smtpd_sender_restrictions = .*$/m,
        "smtpd_sender_restrictions = reject_known_sender_login_mismatch",
      ),
    );
    tables(inst.dir);
    try {
      const got = await session(inst.port, [
        "XCLIENT LOGIN=carol",
        "HELO y",
        "MAIL FROM:<free@ok.example>",
        rcpt,
        "RSET",
        "MAIL FROM:<bob@ok.example>",
        rcpt,
        "QUIT",
      ]);
      assertEquals(got.slice(3), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
        "553 5.7.1 <bob@ok.example>: Sender address rejected: not owned by user carol",
        "221 2.0.0 Bye",
      ]);
    } finally {
      await stop(inst);
    }
    const plain = await start(
      cf.replace(
        /^smtpd_sender_restrictions = .*$/m,
        "smtpd_sender_restrictions = reject_unauthenticated_sender_login_mismatch",
      ).replace("smtpd_sasl_auth_enable = yes", "smtpd_sasl_auth_enable = no"),
    );
    tables(plain.dir);
    try {
      const got = await session(plain.port, ["HELO y", "MAIL FROM:<bob@ok.example>", rcpt, "QUIT"]);
      // Without SASL the restriction is ignored, with Postfix's warning.
      assertEquals(got[3], "250 2.1.5 Ok");
      const log = await logHas(plain, "ignored: no SASL support");
      assertEquals(
        log.includes(
          "warning: restriction `reject_unauthenticated_sender_login_mismatch' ignored: no SASL support",
        ),
        true,
      );
    } finally {
      await stop(plain);
    }
  },
});
