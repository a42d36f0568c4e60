// DANE (RFC 7672) with a test DNS server that signs its answers (the AD
// bit): DANE-EE and DANE-TA matches, a mismatch, insecure TLSA records, and
// dane-only without records.

import { createHash, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { TestDnsServer } from "../../lib/dns/server.ts";
import { deliver, fakeServer, makeCerts, opts, type TestCerts } from "./helpers.ts";

let certs: TestCerts | undefined;
const getCerts = () => (certs ??= makeCerts("mx.dane.example"));

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const spki = (pem: string) =>
  new Uint8Array(new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }));
const der = (pem: string) => new Uint8Array(Buffer.from(new X509Certificate(pem).raw));

async function run(
  tlsa: string[],
  opts2: { ad?: boolean; level?: string; chain?: boolean } = {},
) {
  const c = getCerts();
  const srv = await fakeServer({
    host: "127.0.0.15",
    tls: { key: c.serverKey, cert: opts2.chain ? c.serverCert + c.ca : c.serverCert },
  });
  const dns = await TestDnsServer.start([
    { name: "dane.example", type: "MX", value: "mx.dane.example", preference: 10 },
    { name: "mx.dane.example", type: "A", value: "127.0.0.15" },
    ...tlsa.map((value) => ({
      name: `_${srv.port}._tcp.mx.dane.example`,
      type: "TLSA" as const,
      value,
    })),
  ]);
  dns.ad = opts2.ad ?? true;
  try {
    return await deliver(
      { nexthop: `dane.example:${srv.port}` },
      [
        `posthorn_dns_servers = ${dns.spec}`,
        "inet_protocols = ipv4",
        "smtp_dns_support_level = dnssec",
        "smtp_tls_loglevel = 1",
        `smtp_tls_security_level = ${opts2.level ?? "dane"}`,
      ].join("\n"),
    );
  } finally {
    await dns.close();
    await srv.close();
  }
}

Deno.test("dane: a DANE-EE record of the server's key authenticates it", opts, async () => {
  const r = await run([`3 1 1 ${sha256(spki(getCerts().serverCert))}`]);
  assertEquals([...r.reply.results.values()], ["sent"]);
  assertStringIncludes(r.log, "Verified TLS connection established to mx.dane.example[127.0.0.15]");
});

Deno.test("dane: a DANE-EE record that does not match defers the mail", opts, async () => {
  const r = await run([`3 1 1 ${"ab".repeat(32)}`]);
  assertEquals([...r.reply.results.values()], ["deferred"]);
  assertStringIncludes(r.log, "dsn=4.7.5, status=deferred (Server certificate not verified)");
});

Deno.test(
  "dane: a DANE-TA record of the CA in the server's chain authenticates it",
  opts,
  async () => {
    const r = await run([`2 0 1 ${sha256(der(getCerts().ca))}`], { chain: true });
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertStringIncludes(r.log, "Verified TLS connection established");
  },
);

Deno.test("dane: TLSA records without DNSSEC validation mean opportunistic TLS", opts, async () => {
  const r = await run([`3 1 1 ${"ab".repeat(32)}`], { ad: false });
  assertEquals([...r.reply.results.values()], ["sent"]);
  assertStringIncludes(r.log, "Untrusted TLS connection established");
});

Deno.test("dane-only without TLSA records defers", opts, async () => {
  const r = await run([], { level: "dane-only" });
  assertEquals([...r.reply.results.values()], ["deferred"]);
  assertStringIncludes(r.log, "status=deferred (no TLSA records found for mx.dane.example:");
});
