// Interoperability with the reference: Posthorn's smtp client delivers to
// the reference Postfix's smtpd (OpenSSL underneath) over STARTTLS and
// verifies its certificate. Needs root and the postfix package; skipped
// otherwise.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { freePort } from "../master/instance.ts";
import { deliver, makeCerts, opts } from "./helpers.ts";

function haveReference(): boolean {
  try {
    Deno.statSync("/usr/sbin/postfix");
    const id = new Deno.Command("id", { args: ["-u", "postfix"], stdout: "null", stderr: "null" })
      .outputSync();
    return Deno.uid() === 0 && id.success;
  } catch {
    return false;
  }
}

const masterCf = (port: number) => `
127.0.0.1:${port} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
retry     unix  -       -       n       -       -       error
postlog   unix-dgram n  -       n       -       1       postlogd
`;

Deno.test({
  name: "smtp delivers over STARTTLS to the reference's smtpd and verifies its certificate",
  ...opts,
  ignore: !haveReference(),
  async fn() {
    const certs = makeCerts("mx.tls.example");
    const dir = Deno.makeTempDirSync({ prefix: "smtp-ref-" });
    const port = freePort();
    const postfix = (args: string[]) =>
      new Deno.Command("postfix", { args: ["-c", dir, ...args], stdout: "null", stderr: "null" })
        .output();
    try {
      Deno.chmodSync(dir, 0o755);
      Deno.mkdirSync(`${dir}/q`);
      Deno.mkdirSync(`${dir}/d`);
      new Deno.Command("chown", { args: ["postfix", `${dir}/d`] }).outputSync();
      Deno.writeTextFileSync(`${dir}/cert.pem`, certs.serverCert);
      Deno.writeTextFileSync(`${dir}/key.pem`, certs.serverKey, { mode: 0o600 });
      Deno.writeTextFileSync(
        `${dir}/main.cf`,
        [
          "compatibility_level = 3.6",
          `queue_directory = ${dir}/q`,
          `data_directory = ${dir}/d`,
          `maillog_file = ${dir}/maillog`,
          `maillog_file_prefixes = ${dir}`,
          "inet_interfaces = loopback-only",
          "inet_protocols = ipv4",
          "myhostname = mx.tls.example",
          "mydestination =",
          "relay_domains = remote.example",
          "local_recipient_maps =",
          // Hold what arrives: the test only needs it accepted.
          "default_transport = retry:held",
          "smtpd_tls_security_level = may",
          `smtpd_tls_cert_file = ${dir}/cert.pem`,
          `smtpd_tls_key_file = ${dir}/key.pem`,
        ].join("\n") + "\n",
      );
      Deno.writeTextFileSync(`${dir}/master.cf`, masterCf(port));
      await postfix(["set-permissions"]);
      await postfix(["start"]);
      for (let i = 0; i < 100; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${port}` },
        [
          "smtp_helo_timeout = 20s",
          "smtp_tls_loglevel = 1",
          "smtp_tls_security_level = secure",
          "smtp_tls_secure_cert_match = mx.tls.example",
          `smtp_tls_CAfile = ${certs.caFile}`,
        ].join("\n"),
      );
      assertEquals([...r.reply.results.values()], ["sent"], r.log);
      assertStringIncludes(r.log, "Verified TLS connection established to 127.0.0.1[127.0.0.1]");
      assertStringIncludes(r.log, "status=sent (250 2.0.0 Ok: queued as ");
    } finally {
      await postfix(["stop"]);
      Deno.removeSync(dir, { recursive: true });
      Deno.removeSync(certs.dir, { recursive: true });
    }
  },
});
