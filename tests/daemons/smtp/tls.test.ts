// The smtp client's TLS: STARTTLS at each security level, the TLS log line
// (Anonymous/Untrusted/Trusted/Verified), certificate checks by host name,
// policy table match= and fingerprints, and a client certificate.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { deliver, fakeServer, makeCerts, opts, type TestCerts } from "./helpers.ts";

let certs: TestCerts | undefined;
function getCerts(): TestCerts {
  certs ??= makeCerts("mx.tls.example");
  return certs;
}

function fingerprint(pem: string): string {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/c.pem`, pem);
  const out = new Deno.Command("openssl", {
    args: ["x509", "-in", `${dir}/c.pem`, "-noout", "-fingerprint", "-sha256"],
    stdout: "piped",
  }).outputSync();
  Deno.removeSync(dir, { recursive: true });
  return new TextDecoder().decode(out.stdout).trim().split("=")[1];
}

Deno.test(
  "smtp_tls_security_level=may uses STARTTLS and logs an Untrusted TLS connection",
  opts,
  async () => {
    const c = getCerts();
    const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_tls_loglevel = 1\nsmtp_tls_security_level = may",
      );
      assertEquals([...r.reply.results.values()], ["sent"]);
      assert(
        new RegExp(
          `Untrusted TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${srv.port}: TLSv1\\.[23] with cipher \\S+ \\(\\d+/\\d+ bits\\)`,
        ).test(r.log),
        r.log,
      );
      assertEquals(srv.sessions[0].tls, true);
      assertEquals(srv.sessions[0].lines.filter((l) => l.startsWith("EHLO")).length, 2);
      assertStringIncludes(r.log, `relay=127.0.0.1[127.0.0.1]:${srv.port}, delay=`);
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp with smtp_tls_CAfile logs a Trusted connection at level may", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      `smtp_tls_loglevel = 1\nsmtp_tls_security_level = may\nsmtp_tls_CAfile = ${c.caFile}`,
    );
    assertStringIncludes(r.log, "Trusted TLS connection established to 127.0.0.1[127.0.0.1]");
  } finally {
    await srv.close();
  }
});

Deno.test("smtp at level encrypt defers when the server offers no STARTTLS", opts, async () => {
  const srv = await fakeServer();
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_tls_loglevel = 1\nsmtp_tls_security_level = encrypt",
    );
    assertEquals([...r.reply.results.values()], ["deferred"]);
    assertStringIncludes(
      r.log,
      "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])",
    );
    assertEquals(srv.sessions[0].lines.some((l) => l.startsWith("MAIL")), false);
  } finally {
    await srv.close();
  }
});

Deno.test("smtp at level verify checks the chain and the host name", opts, async () => {
  const c = getCerts();
  const good = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
  const self = await fakeServer({ tls: { key: c.selfKey, cert: c.selfCert } });
  try {
    const cf =
      `smtp_tls_loglevel = 1\nsmtp_tls_security_level = verify\nsmtp_tls_CAfile = ${c.caFile}`;
    const ok = await deliver({ nexthop: `[127.0.0.1]:${good.port}` }, cf);
    assertEquals([...ok.reply.results.values()], ["sent"]);
    assertStringIncludes(ok.log, "Verified TLS connection established to 127.0.0.1[127.0.0.1]");
    const bad = await deliver({ nexthop: `[127.0.0.1]:${self.port}` }, cf);
    assertEquals([...bad.reply.results.values()], ["deferred"]);
    assertStringIncludes(bad.log, "dsn=4.7.5, status=deferred (Server certificate not verified)");
    assertEquals(self.sessions[0].lines.some((l) => l.startsWith("MAIL")), false);
  } finally {
    await good.close();
    await self.close();
  }
});

Deno.test("smtp_tls_policy_maps: secure with match= and fingerprint levels", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
  const dir = Deno.makeTempDirSync();
  try {
    const key = `[127.0.0.1]:${srv.port}`;
    Deno.writeTextFileSync(`${dir}/policy`, `${key} secure match=mx.tls.example\n`);
    const secure = await deliver(
      { nexthop: key },
      `smtp_tls_loglevel = 1\nsmtp_tls_policy_maps = texthash:${dir}/policy\nsmtp_tls_CAfile = ${c.caFile}`,
    );
    assertEquals([...secure.reply.results.values()], ["sent"]);
    assertStringIncludes(secure.log, "Verified TLS connection established");
    Deno.writeTextFileSync(`${dir}/policy`, `${key} secure match=other.example\n`);
    const mismatch = await deliver(
      { nexthop: key },
      `smtp_tls_loglevel = 1\nsmtp_tls_policy_maps = texthash:${dir}/policy\nsmtp_tls_CAfile = ${c.caFile}`,
    );
    assertStringIncludes(mismatch.log, "status=deferred (Server certificate not verified)");
    Deno.writeTextFileSync(
      `${dir}/policy`,
      `${key} fingerprint match=${fingerprint(c.serverCert)}\n`,
    );
    const fp = await deliver(
      { nexthop: key },
      `smtp_tls_loglevel = 1\nsmtp_tls_policy_maps = texthash:${dir}/policy\nsmtp_tls_fingerprint_digest = sha256`,
    );
    assertEquals([...fp.reply.results.values()], ["sent"]);
    assertStringIncludes(fp.log, "Verified TLS connection established");
    Deno.writeTextFileSync(`${dir}/policy`, `${key} fingerprint match=${"AB:".repeat(31)}AB\n`);
    const wrong = await deliver(
      { nexthop: key },
      `smtp_tls_loglevel = 1\nsmtp_tls_policy_maps = texthash:${dir}/policy\nsmtp_tls_fingerprint_digest = sha256`,
    );
    assertStringIncludes(wrong.log, "status=deferred (Server certificate not verified)");
  } finally {
    await srv.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("smtp presents smtp_tls_cert_file as its client certificate", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert, ca: c.ca } });
  try {
    await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      `smtp_tls_loglevel = 1\nsmtp_tls_security_level = encrypt\nsmtp_tls_cert_file = ${c.clientCertFile}\nsmtp_tls_key_file = ${c.clientKeyFile}`,
    );
    assertEquals(srv.sessions[0].clientCert, "client.example");
  } finally {
    await srv.close();
  }
});

Deno.test("smtp_tls_wrappermode speaks TLS from the first byte", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert }, wrapper: true });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_tls_loglevel = 1\nsmtp_tls_wrappermode = yes\nsmtp_tls_security_level = encrypt",
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertStringIncludes(r.log, "Untrusted TLS connection established to 127.0.0.1[127.0.0.1]");
    assertEquals(srv.sessions[0].lines[0], "EHLO client.example");
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp at level may retries in the clear after a failed TLS handshake; encrypt defers",
  opts,
  async () => {
    const srv = await fakeServer({ brokenTls: true });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_tls_loglevel = 1\nsmtp_tls_security_level = may",
      );
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertEquals(srv.sessions.length, 2);
      assertEquals(srv.sessions[1].lines.includes("STARTTLS"), false);
      const enc = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_tls_loglevel = 1\nsmtp_tls_security_level = encrypt",
      );
      assertEquals([...enc.reply.results.values()], ["deferred"]);
      assertStringIncludes(
        enc.log,
        "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp_tls_protocols limits the TLS versions offered", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_tls_loglevel = 1\nsmtp_tls_security_level = may\nsmtp_tls_protocols = !SSLv2, !SSLv3, !TLSv1.3",
    );
    assertStringIncludes(r.log, "TLS connection established to 127.0.0.1[127.0.0.1]");
    assertStringIncludes(r.log, ": TLSv1.2 with cipher ");
  } finally {
    await srv.close();
  }
});

Deno.test("smtp_tls_loglevel = 0 (the default) logs no TLS line", opts, async () => {
  const c = getCerts();
  const srv = await fakeServer({ tls: { key: c.serverKey, cert: c.serverCert } });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_tls_security_level = may",
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].tls, true);
    assertEquals(r.log.includes("TLS connection established"), false, r.log);
  } finally {
    await srv.close();
  }
});
