// Where the resolver's settings come from: resolv.conf(5) (name servers,
// options, search), posthorn_dns_servers in main.cf, and the DNSSEC switch.

import { assertEquals, assertThrows } from "../../assert.ts";
import { parseResolvConf, parseServer, Resolver } from "../../../lib/dns/mod.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { FatalError } from "../../../lib/log.ts";
import { TestDnsServer } from "./server.ts";

Deno.test("resolv.conf: name servers (three at most), options and search domains", () => {
  const conf = parseResolvConf(
    "# comment\nnameserver 192.0.2.1\nnameserver 2001:db8::53 ; trailing\n" +
      "nameserver bogus\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n" +
      "search a.example b.example.\noptions timeout:2 attempts:3 rotate ndots:2 edns0\n",
  );
  assertEquals(conf.servers, [
    { host: "192.0.2.1", port: 53 },
    { host: "2001:db8::53", port: 53 },
    { host: "192.0.2.3", port: 53 },
  ]);
  assertEquals(conf.search, ["a.example", "b.example"]);
  assertEquals([conf.timeoutMs, conf.attempts, conf.rotate, conf.ndots], [2000, 3, true, 2]);
  const defaults = parseResolvConf("domain corp.example\noptions timeout:0 attempts:99\n");
  assertEquals(defaults.search, ["corp.example"]);
  assertEquals([defaults.timeoutMs, defaults.attempts, defaults.rotate], [1000, 5, false]);
});

Deno.test("server addresses: ip, [ip]:port, ipv4:port; anything else is refused", () => {
  assertEquals(parseServer("192.0.2.1"), { host: "192.0.2.1", port: 53 });
  assertEquals(parseServer("[192.0.2.1]:5353"), { host: "192.0.2.1", port: 5353 });
  assertEquals(parseServer("192.0.2.1:5353"), { host: "192.0.2.1", port: 5353 });
  assertEquals(parseServer("[::1]:5353"), { host: "::1", port: 5353 });
  assertEquals(parseServer("::1"), { host: "::1", port: 53 });
  assertEquals(parseServer("dns.example"), undefined);
  assertEquals(parseServer("[192.0.2.1]:0"), undefined);
  assertEquals(parseServer("300.0.0.1"), undefined);
});

Deno.test("Resolver.fromConfig uses posthorn_dns_servers and smtp_dns_support_level", async () => {
  const dns = await TestDnsServer.start([{ name: "a.example", type: "A", value: "192.0.2.7" }]);
  try {
    const config = configFromText(
      "/nonexistent",
      `posthorn_dns_servers = ${dns.spec}\nsmtp_dns_support_level = dnssec\n`,
    );
    const r = Resolver.fromConfig(config);
    assertEquals(r.servers, [{ host: "127.0.0.1", port: dns.port }]);
    assertEquals(r.dnssec, true);
    assertEquals((await r.query("a.example", "A")).records[0].value, "192.0.2.7");
    assertEquals(Resolver.fromConfig(config, { dnssec: false }).dnssec, false);
    const bad = configFromText("/nonexistent", "posthorn_dns_servers = dns.example\n");
    assertThrows(() => Resolver.fromConfig(bad), FatalError);
  } finally {
    await dns.close();
  }
});

Deno.test("a resolv.conf file sets the servers, timeout and search list", async () => {
  const dns = await TestDnsServer.start([
    { name: "host.corp.example", type: "A", value: "192.0.2.8" },
  ]);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/resolv.conf`;
    Deno.writeTextFileSync(
      path,
      `nameserver 127.0.0.1\nsearch corp.example\noptions timeout:1 attempts:1\n`,
    );
    const plain = new Resolver({ resolvConf: path });
    assertEquals([plain.timeoutMs, plain.attempts], [1000, 1]);
    assertEquals(plain.servers, [{ host: "127.0.0.1", port: 53 }]);
    // Names without dots try the search list only when asked to (RES_DEFNAMES).
    const searching = new Resolver({ resolvConf: path, servers: [dns.spec], search: true });
    assertEquals((await searching.query("host", "A")).records[0]?.value, "192.0.2.8");
    const literal = new Resolver({ resolvConf: path, servers: [dns.spec] });
    assertEquals((await literal.query("host", "A")).status, "nxdomain");
    assertEquals(dns.queries.map((q) => q.name), ["host.corp.example", "host"]);
  } finally {
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rotate spreads the first query over the servers", async () => {
  const one = await TestDnsServer.start([{ name: "a.example", type: "A", value: "192.0.2.1" }]);
  const two = await TestDnsServer.start([{ name: "a.example", type: "A", value: "192.0.2.1" }]);
  try {
    const r = new Resolver({ servers: [one.spec, two.spec], rotate: true, timeoutMs: 500 });
    for (let i = 0; i < 4; i++) await r.query("a.example", "A");
    assertEquals([one.queries.length, two.queries.length], [2, 2]);
    const fixed = new Resolver({ servers: [one.spec, two.spec], rotate: false, timeoutMs: 500 });
    for (let i = 0; i < 2; i++) await fixed.query("a.example", "A");
    assertEquals([one.queries.length, two.queries.length], [4, 2]);
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("malformed names are not sent and count as not found", async () => {
  const r = new Resolver({ servers: ["[127.0.0.1]:9"], timeoutMs: 100, attempts: 1 });
  assertEquals((await r.query("a..b", "A")).status, "nxdomain");
  assertEquals((await r.query("x".repeat(64) + ".example", "A")).status, "nxdomain");
});
