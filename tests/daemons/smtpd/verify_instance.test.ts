// reject_unverified_recipient and reject_unverified_sender against the real
// verify service in a whole instance (master, smtpd, cleanup, qmgr,
// trivial-rewrite, verify, bounce and the error/discard agents): the first
// RCPT sends a probe and polls until its result is in. Replies as the
// reference gives them for the same transports.

import { assertEquals } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { freePort, Instance } from "../master/instance.ts";
import { session } from "./helpers.ts";

const launcher = `${projectRoot}tests/daemons/verify/launch.ts`;

function masterCf(port: number): string {
  return `
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
`;
}

Deno.test({
  name: "reject_unverified_* through a real verify service: probes, polling, the cached verdict",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const port = freePort();
    const inst = await Instance.create(
      masterCf(port),
      [
        `posthorn_launcher = ${Deno.execPath()} run -A --unstable-ffi --unstable-net ${launcher}`,
        "myhostname = mx.example.com",
        "mydomain = example.com",
        "myorigin = example.com",
        "mydestination =",
        "relay_domains = ok.example bad.example",
        "hash_queue_names =",
        "smtpd_sender_restrictions = reject_unverified_sender",
        "smtpd_recipient_restrictions = reject_unverified_recipient",
        "address_verify_poll_count = 10",
        "address_verify_poll_delay = 1s",
        "smtpd_client_connection_count_limit = 0",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${inst.dir}/main.cf`,
      `transport_maps = texthash:${inst.dir}/transport\n`,
      { append: true },
    );
    await Deno.writeTextFile(
      `${inst.dir}/transport`,
      "bad.example error:5.1.1 no such user here\nok.example discard:delivered nowhere\n",
    );
    const started = await inst.postfix("start");
    try {
      assertEquals(started.code, 0, started.stderr);
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          up = true;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const got = await session(port, [
        "HELO client.example",
        "MAIL FROM:<s@bad.example>",
        "RCPT TO:<u@ok.example>",
        "RSET",
        "MAIL FROM:<s@ok.example>",
        "RCPT TO:<u@bad.example>",
        "RCPT TO:<u@ok.example>",
        "RCPT TO:<u@bad.example>",
        "QUIT",
      ]);
      assertEquals(got.slice(2), [
        "250 2.1.0 Ok",
        "450 4.1.7 <s@bad.example>: Sender address rejected: unverified address: no such user here",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
        "450 4.1.1 <u@bad.example>: Recipient address rejected: unverified address: no such user here",
        "250 2.1.5 Ok",
        "450 4.1.1 <u@bad.example>: Recipient address rejected: unverified address: no such user here",
        "221 2.0.0 Bye",
      ]);
    } finally {
      await inst.postfix("stop");
      await inst.destroy();
    }
  },
});
