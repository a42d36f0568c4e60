// STARTTLS with node:tls: offered when a certificate is configured, the
// session restarted after the handshake (RFC 3207 4.2), ESMTPS in the
// Received header, smtpd_tls_security_level = encrypt refusing mail before
// STARTTLS, and wrapper mode.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { incoming, logHas, session, start, stop } from "./helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function makeCert(dir: string): Promise<boolean> {
  try {
    const o = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "2",
        "-subj",
        "/CN=mx.example.com",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    return o.success;
  } catch {
    return false;
  }
}

async function python(script: string): Promise<string> {
  const p = new Deno.Command("python3", { args: ["-c", script], stdout: "piped", stderr: "piped" });
  const o = await p.output();
  return new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
}

const canRun =
  (await new Deno.Command("sh", { args: ["-c", "command -v openssl && command -v python3"] })
    .output())
    .success;

Deno.test({
  ...opts,
  name: "STARTTLS is offered with a certificate and mail sent over it is queued as ESMTPS",
  ignore: !canRun,
  async fn() {
    const dir = await Deno.makeTempDir();
    assert(await makeCert(dir));
    const inst = await start(
      `smtpd_tls_security_level = encrypt\nsmtpd_tls_cert_file = ${dir}/cert.pem\nsmtpd_tls_key_file = ${dir}/key.pem\n`,
    );
    try {
      const plain = await session(inst.port, [
        "EHLO x",
        "MAIL FROM:<a@example.org>",
        "STARTTLS x",
        "QUIT",
      ]);
      assertStringIncludes(plain[1], "250-STARTTLS");
      assertEquals(plain[2], "530 5.7.0 Must issue a STARTTLS command first");
      assertEquals(plain[3], "501 5.5.4 Syntax: STARTTLS");
      const out = await python(`
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", ${inst.port})
s.ehlo("client.example")
print(s.starttls(context=ctx))
s.ehlo("client.example")
print("starttls again", s.has_extn("starttls"))
print(s.sendmail("a@example.org", ["u@mx.example.com"], "Subject: tls\\r\\n\\r\\nsecret\\r\\n"))
s.quit()
`);
      assertStringIncludes(out, "(220, b'2.0.0 Ready to start TLS')");
      assertStringIncludes(out, "starttls again False");
      assertStringIncludes(out, "{}");
      await logHas(inst, "Anonymous TLS connection established");
      const id = incoming(inst)[0];
      const lines = decodeRecords(readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`))
        .filter((r) => r.type === "N").map((r) => new TextDecoder().decode(r.data));
      assert(lines.some((l) => / with ESMTPS id /.test(l)), lines.join("|"));
    } finally {
      await stop(inst);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...opts,
  name: "smtpd_tls_wrappermode speaks TLS from the first byte",
  ignore: !canRun,
  async fn() {
    const dir = await Deno.makeTempDir();
    assert(await makeCert(dir));
    const inst = await start(
      `smtpd_tls_security_level = may\nsmtpd_tls_wrappermode = yes\nsmtpd_tls_cert_file = ${dir}/cert.pem\n` +
        `smtpd_tls_key_file = ${dir}/key.pem\n`,
    );
    try {
      const out = await python(`
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", ${inst.port}, context=ctx)
print(s.noop())
s.quit()
`);
      assertStringIncludes(out, "(250, b'2.0.0 Ok')");
    } finally {
      await stop(inst);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
