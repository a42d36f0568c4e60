// The lookups built on the resolver: DNS list query names and reply filters,
// hosts(5), the client hostname lookup with forward confirmation, and the
// "domain exists for mail" check with null MX.

import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { Resolver } from "../../../lib/dns/mod.ts";
import {
  addressQuery,
  DnsxlPatternError,
  domainQuery,
  lookupDnsxl,
  matchReplyFilter,
  parseDnsxlSite,
} from "../../../lib/dns/dnsxl.ts";
import { hostsAddressesOf, hostsNameOf, parseHosts } from "../../../lib/dns/hosts.ts";
import { lookupPeer } from "../../../lib/dns/peer.ts";
import { mailHostStatus } from "../../../lib/dns/mailhost.ts";
import { validHostname } from "../../../lib/dns/address.ts";
import { TestDnsServer } from "./server.ts";

Deno.test("DNS list sites, query names and reply filters", () => {
  assertEquals(parseDnsxlSite("zen.example"), { domain: "zen.example" });
  assertEquals(parseDnsxlSite("zen.example=127.0.0.[2..11]"), {
    domain: "zen.example",
    filter: "127.0.0.[2..11]",
  });
  assertEquals(addressQuery("192.0.2.1", "zen.example"), "1.2.0.192.zen.example");
  assertEquals(
    addressQuery("2001:db8::1", "zen.example"),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example",
  );
  assertEquals(domainQuery("user@Spam.Example", "rhs.example"), "Spam.Example.rhs.example");
  assertEquals(domainQuery("host.example.", "rhs.example"), undefined);
  assertEquals(domainQuery("host.example", "rhs.example"), "host.example.rhs.example");
  // Address literals, bad names and numeric last labels are not asked about.
  assertEquals(domainQuery("user@[192.0.2.1]", "rhs.example"), undefined);
  assertEquals(domainQuery("bad_name!", "rhs.example"), undefined);
  assertEquals(domainQuery("host.123", "rhs.example"), undefined);
  assert(matchReplyFilter("127.0.0.2", "127.0.0.2"));
  assert(!matchReplyFilter("127.0.0.2", "127.0.0.3"));
  assert(matchReplyFilter("127.0.0.[2..11]", "127.0.0.11"));
  assert(matchReplyFilter("127.0.[0;5].[2;4..6]", "127.0.5.5"));
  assert(!matchReplyFilter("127.0.[0;5].[2;4..6]", "127.0.5.3"));
  assertThrows(() => matchReplyFilter("127.0.0", "127.0.0.1"), DnsxlPatternError);
  assertThrows(() => matchReplyFilter("127.0.0.[3..2]", "127.0.0.1"), DnsxlPatternError);
  assertThrows(() => matchReplyFilter("127.0.0.[2", "127.0.0.1"), DnsxlPatternError);
});

Deno.test("DNS list lookups: listed with reasons, unlisted, filtered, failed", async () => {
  const dns = await TestDnsServer.start([
    { name: "2.0.0.127.bl.example", type: "A", value: "127.0.0.2" },
    { name: "2.0.0.127.bl.example", type: "TXT", value: "one" },
    { name: "2.0.0.127.bl.example", type: "TXT", value: "two" },
    { name: "3.0.0.127.bl.example", type: "A", value: "127.0.0.10" },
  ]);
  dns.fail("4.0.0.127.bl.example", "servfail");
  try {
    const r = new Resolver({ servers: [dns.spec], timeoutMs: 300, attempts: 1 });
    assertEquals(await lookupDnsxl(r, "2.0.0.127.bl.example"), {
      status: "listed",
      txt: "one / two",
    });
    assertEquals((await lookupDnsxl(r, "3.0.0.127.bl.example")).txt, "");
    assertEquals((await lookupDnsxl(r, "3.0.0.127.bl.example", "127.0.0.2")).status, "unlisted");
    assertEquals((await lookupDnsxl(r, "5.0.0.127.bl.example")).status, "unlisted");
    const failed = await lookupDnsxl(r, "4.0.0.127.bl.example");
    assertEquals(failed.status, "tempfail");
    assertEquals(
      failed.why,
      "Host or domain name not found. Name service error for name=4.0.0.127.bl.example type=A: Host not found, try again",
    );
  } finally {
    await dns.close();
  }
});

Deno.test("hosts(5) entries map addresses to names and back", () => {
  const hosts = parseHosts(
    "127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n" +
      "192.0.2.5 Mail.Example mail\nbogus line\n",
  );
  assertEquals(hostsNameOf(hosts, "192.0.2.5"), "mail.example");
  assertEquals(hostsNameOf(hosts, "0:0:0:0:0:0:0:1"), "localhost");
  assertEquals(hostsNameOf(hosts, "192.0.2.6"), undefined);
  assertEquals(hostsAddressesOf(hosts, "LOCALHOST"), ["127.0.0.1", "::1"]);
  assertEquals(hostsAddressesOf(hosts, "mail"), ["192.0.2.5"]);
});

Deno.test("host name syntax as Postfix checks it", () => {
  assert(validHostname("mail.example.com"));
  assert(validHostname("mail.example.com."));
  assert(validHostname("under_score.example"));
  assert(!validHostname("-dash.example"));
  assert(!validHostname("a..b"));
  assert(!validHostname("192.0.2.1"));
  assert(!validHostname("x".repeat(64) + ".example"));
});

Deno.test("the client hostname lookup forward-confirms the PTR name", async () => {
  const dns = await TestDnsServer.start([
    { name: "1.2.0.192.in-addr.arpa", type: "PTR", value: "ok.example." },
    { name: "ok.example", type: "A", value: "192.0.2.1" },
    { name: "2.2.0.192.in-addr.arpa", type: "PTR", value: "forged.example" },
    { name: "forged.example", type: "A", value: "192.0.2.99" },
    { name: "3.2.0.192.in-addr.arpa", type: "PTR", value: "192.0.2.3" },
    { name: "4.2.0.192.in-addr.arpa", type: "PTR", value: "nowhere.example" },
    {
      name: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
      type: "PTR",
      value: "six.example",
    },
    { name: "six.example", type: "AAAA", value: "2001:db8:0:0::1" },
  ]);
  dns.fail("5.2.0.192.in-addr.arpa", "servfail");
  const dir = await Deno.makeTempDir();
  try {
    const hostsFile = `${dir}/hosts`;
    Deno.writeTextFileSync(hostsFile, "192.0.2.50 fromfile.example\n");
    const r = new Resolver({ servers: [dns.spec], timeoutMs: 300, attempts: 1 });
    const warnings: string[] = [];
    const look = (addr: string) =>
      lookupPeer(r, addr, { hostsFile, warn: (t) => warnings.push(t) });
    assertEquals(await look("192.0.2.1"), {
      name: "ok.example",
      reverseName: "ok.example",
      nameStatus: "ok",
      reverseStatus: "ok",
    });
    assertEquals(await look("192.0.2.2"), {
      name: "unknown",
      reverseName: "forged.example",
      nameStatus: "forged",
      reverseStatus: "ok",
    });
    assertEquals((await look("192.0.2.3")).reverseStatus, "perm");
    assertEquals(await look("192.0.2.4"), {
      name: "unknown",
      reverseName: "nowhere.example",
      nameStatus: "forged",
      reverseStatus: "ok",
    });
    assertEquals(await look("192.0.2.5"), {
      name: "unknown",
      reverseName: "unknown",
      nameStatus: "temp",
      reverseStatus: "temp",
    });
    assertEquals((await look("192.0.2.6")).reverseStatus, "perm");
    assertEquals((await look("192.0.2.50")).name, "fromfile.example");
    assertEquals((await look("2001:db8::1")).name, "six.example");
    assertEquals(warnings, [
      "hostname forged.example does not resolve to address 192.0.2.2",
      "numeric hostname: 192.0.2.3",
      "hostname nowhere.example does not resolve to address 192.0.2.4: Name or service not known",
    ]);
  } finally {
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mail domain exists by MX, A or AAAA; null MX and malformed MX hosts are told apart", async () => {
  const dns = await TestDnsServer.start([
    { name: "mx.example", type: "MX", value: "mail.mx.example", preference: 10 },
    { name: "aonly.example", type: "A", value: "192.0.2.1" },
    { name: "six.example", type: "AAAA", value: "2001:db8::1" },
    { name: "null.example", type: "MX", value: "", preference: 0 },
    { name: "numeric.example", type: "MX", value: "192.0.2.7", preference: 0 },
    { name: "bad.example", type: "MX", value: "bad!host.example", preference: 0 },
    { name: "bad.example", type: "A", value: "192.0.2.8" },
  ]);
  dns.fail("fail.example", "servfail", "MX");
  try {
    const warnings: string[] = [];
    const r = new Resolver({
      servers: [dns.spec],
      timeoutMs: 300,
      attempts: 1,
      warn: (t) => warnings.push(t),
    });
    const order = ["MX", "A", "AAAA"] as const;
    assertEquals(await mailHostStatus(r, "mx.example", [...order]), "ok");
    assertEquals(await mailHostStatus(r, "aonly.example", [...order]), "ok");
    assertEquals(await mailHostStatus(r, "six.example", [...order]), "ok");
    assertEquals(await mailHostStatus(r, "null.example", [...order]), "nullmx");
    assertEquals(await mailHostStatus(r, "numeric.example", [...order]), "ok");
    assertEquals(await mailHostStatus(r, "bad.example", [...order]), "invalid");
    // Without stopping at a malformed answer, the A record counts.
    assertEquals(await mailHostStatus(r, "bad.example", [...order], false), "ok");
    assertEquals(warnings, [
      "numeric domain name in resource data of MX record for numeric.example: 192.0.2.7",
      "malformed domain name in resource data of MX record for bad.example: bad!host.example",
      "malformed domain name in resource data of MX record for bad.example: bad!host.example",
    ]);
    assertEquals(await mailHostStatus(r, "gone.example", [...order]), "notfound");
    assertEquals(await mailHostStatus(r, "fail.example", [...order]), "tempfail");
  } finally {
    await dns.close();
  }
});
