// The stub resolver against the test server: answers, NXDOMAIN vs NODATA vs
// the temporary failures (SERVFAIL, REFUSED, timeout, garbage, wrong id),
// truncation falling back to TCP, CNAME chains, the AD bit, server order.

import { assert, assertEquals } from "../../assert.ts";
import { Resolver } from "../../../lib/dns/mod.ts";
import { TestDnsServer } from "./server.ts";

const ZONE = [
  { name: "example.com", type: "MX" as const, value: "mx.example.com", preference: 10 },
  { name: "example.com", type: "MX" as const, value: "mx2.example.com.", preference: 20 },
  { name: "mx.example.com", type: "A" as const, value: "192.0.2.1" },
  { name: "mx.example.com", type: "AAAA" as const, value: "2001:db8::1" },
  { name: "www.example.com", type: "CNAME" as const, value: "mx.example.com" },
  { name: "far.example.com", type: "CNAME" as const, value: "elsewhere.example.net" },
  { name: "elsewhere.example.net", type: "A" as const, value: "192.0.2.9" },
  { name: "txt.example.com", type: "TXT" as const, value: "v=spf1 -all" },
  { name: "_25._tcp.mx.example.com", type: "TLSA" as const, value: "3 1 1 abcdef0123" },
  { name: "1.2.0.192.in-addr.arpa", type: "PTR" as const, value: "mx.example.com." },
];

function withServer(name: string, fn: (dns: TestDnsServer, r: Resolver) => Promise<void>) {
  Deno.test({
    name,
    async fn() {
      const dns = await TestDnsServer.start(ZONE);
      try {
        await fn(dns, new Resolver({ servers: [dns.spec], timeoutMs: 200, attempts: 1 }));
      } finally {
        await dns.close();
      }
    },
  });
}

withServer("resolver returns MX records with preference and no trailing dot", async (_dns, r) => {
  const res = await r.query("example.com", "MX");
  assertEquals(res.status, "ok");
  assertEquals(
    res.records.map((x) => [x.preference, x.value]),
    [[10, "mx.example.com"], [20, "mx2.example.com"]],
  );
  assertEquals(res.records[0].name, "example.com");
  assertEquals(res.records[0].ttl, 300);
});

withServer("resolver returns A, AAAA, TXT, TLSA and PTR values", async (_dns, r) => {
  assertEquals((await r.query("mx.example.com", "A")).records[0].value, "192.0.2.1");
  assertEquals((await r.query("MX.Example.COM.", "AAAA")).records[0].value, "2001:db8::1");
  assertEquals((await r.query("txt.example.com", "TXT")).records[0].value, "v=spf1 -all");
  assertEquals(
    (await r.query("_25._tcp.mx.example.com", "TLSA")).records[0].value,
    "3 1 1 abcdef0123",
  );
  assertEquals((await r.query("1.2.0.192.in-addr.arpa", "PTR")).records[0].value, "mx.example.com");
});

withServer("resolver follows CNAME chains, in the answer and by asking again", async (dns, r) => {
  const res = await r.query("www.example.com", "A");
  assertEquals(res.status, "ok");
  assertEquals(res.records.map((x) => [x.name, x.value]), [["mx.example.com", "192.0.2.1"]]);
  const far = await r.query("far.example.com", "A");
  assertEquals(far.records.map((x) => x.value), ["192.0.2.9"]);
  assertEquals(dns.queries.map((q) => q.name).slice(-2), [
    "far.example.com",
    "elsewhere.example.net",
  ]);
  const cname = await r.query("www.example.com", "CNAME");
  assertEquals(cname.records.map((x) => x.value), ["mx.example.com"]);
});

withServer("resolver tells NXDOMAIN from NODATA", async (_dns, r) => {
  const nx = await r.query("nope.example.com", "A");
  assertEquals([nx.status, nx.reason], ["nxdomain", "Host not found"]);
  const nodata = await r.query("txt.example.com", "A");
  assertEquals(
    [nodata.status, nodata.reason],
    ["nodata", "Host found but no data record of requested type"],
  );
});

for (const mode of ["servfail", "refused", "formerr", "drop", "garbage", "wrongid"] as const) {
  withServer(`resolver reports ${mode} as a temporary failure`, async (dns, r) => {
    dns.fail("mx.example.com", mode);
    const started = Date.now();
    const res = await r.query("mx.example.com", "A");
    assertEquals([res.status, res.reason], ["tempfail", "Host not found, try again"]);
    assert(Date.now() - started < 2000);
  });
}

withServer("resolver retries over TCP when the UDP answer is truncated", async (dns, r) => {
  dns.fail("example.com", "truncate");
  const res = await r.query("example.com", "MX");
  assertEquals(res.records.length, 2);
  assertEquals(dns.queries.map((q) => q.transport), ["udp", "tcp"]);
});

withServer("resolver falls back to TCP for a large answer", async (dns, r) => {
  for (let i = 0; i < 40; i++) {
    dns.add({ name: "big.example.com", type: "A", value: `192.0.2.${i}` });
  }
  const res = await r.query("big.example.com", "A");
  assertEquals(res.records.length, 40);
  assertEquals(dns.queries.map((q) => q.transport), ["udp", "tcp"]);
});

withServer("resolver passes the AD bit only when DNSSEC was asked for", async (dns) => {
  dns.ad = true;
  const plain = new Resolver({ servers: [dns.spec], timeoutMs: 200, attempts: 1 });
  const secure = new Resolver({ servers: [dns.spec], timeoutMs: 200, attempts: 1, dnssec: true });
  assertEquals((await plain.query("mx.example.com", "A")).ad, false);
  assertEquals((await secure.query("mx.example.com", "A")).ad, true);
  assertEquals(dns.queries.map((q) => q.dnssecOk), [false, true]);
  dns.ad = false;
  assertEquals((await secure.query("mx.example.com", "A")).ad, false);
});

withServer("resolver moves on to the next server after a failure", async (dns) => {
  const bad = await TestDnsServer.start();
  bad.fail("mx.example.com", "servfail");
  try {
    const r = new Resolver({ servers: [bad.spec, dns.spec], timeoutMs: 200, attempts: 2 });
    const res = await r.query("mx.example.com", "A");
    assertEquals(res.status, "ok");
    assertEquals(bad.queries.length, 1);
  } finally {
    await bad.close();
  }
});

withServer("resolver tries each server attempts times before giving up", async (dns) => {
  dns.fail("mx.example.com", "drop");
  const r = new Resolver({ servers: [dns.spec], timeoutMs: 100, attempts: 3 });
  assertEquals((await r.query("mx.example.com", "A")).status, "tempfail");
  assertEquals(dns.queries.length, 3);
});

withServer("resolver asks again without EDNS0 when a server refuses it", async (dns) => {
  dns.fail("mx.example.com", "noedns");
  const secure = new Resolver({ servers: [dns.spec], timeoutMs: 200, attempts: 1, dnssec: true });
  const res = await secure.query("mx.example.com", "A");
  assertEquals([res.status, res.records[0]?.value], ["ok", "192.0.2.1"]);
  assertEquals(dns.queries.map((q) => q.dnssecOk), [true, false]);
});
