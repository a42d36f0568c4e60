// Next-hop resolution against a test DNS server: MX preference order, A
// records when there is no MX, name service errors, the loop check, a
// recipient a first MX host defers retried at the next one, and
// smtp_fallback_relay.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { TestDnsServer, type ZoneRecord } from "../../lib/dns/server.ts";
import { deliver, fakeServer, opts } from "./helpers.ts";

async function withDns<T>(
  records: ZoneRecord[],
  fn: (dns: TestDnsServer, cf: string) => Promise<T>,
): Promise<T> {
  const dns = await TestDnsServer.start(records);
  try {
    return await fn(dns, `posthorn_dns_servers = ${dns.spec}\ninet_protocols = ipv4`);
  } finally {
    await dns.close();
  }
}

Deno.test("smtp tries MX hosts by preference and logs the one that failed", opts, async () => {
  const good = await fakeServer({ host: "127.0.0.3" });
  try {
    await withDns([
      { name: "remote.example", type: "MX", value: "mx1.remote.example", preference: 10 },
      { name: "remote.example", type: "MX", value: "mx2.remote.example", preference: 20 },
      { name: "mx1.remote.example", type: "A", value: "127.0.0.2" },
      { name: "mx2.remote.example", type: "A", value: "127.0.0.3" },
    ], async (_dns, cf) => {
      const r = await deliver({ nexthop: `remote.example:${good.port}` }, cf);
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertStringIncludes(
        r.log,
        `connect to mx1.remote.example[127.0.0.2]:${good.port}: Connection refused`,
      );
      assertStringIncludes(r.log, `relay=mx2.remote.example[127.0.0.3]:${good.port}, delay=`);
    });
  } finally {
    await good.close();
  }
});

Deno.test("smtp uses the domain's A record when it has no MX", opts, async () => {
  const srv = await fakeServer({ host: "127.0.0.4" });
  try {
    await withDns([{ name: "nomx.example", type: "A", value: "127.0.0.4" }], async (_d, cf) => {
      const r = await deliver({ nexthop: `nomx.example:${srv.port}` }, cf);
      assertStringIncludes(r.log, `relay=nomx.example[127.0.0.4]:${srv.port}`);
      assertStringIncludes(r.log, "status=sent");
    });
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp bounces mail for a domain that does not exist, defers on a DNS failure",
  opts,
  async () => {
    await withDns([], async (dns, cf) => {
      const r = await deliver({ nexthop: "nowhere.example" }, cf);
      assertEquals([...r.reply.results.values()], ["bounced"]);
      assertStringIncludes(
        r.log,
        "relay=none, delay=",
      );
      assertStringIncludes(
        r.log,
        "dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found)",
      );
      dns.fail("broken.example", "servfail");
      const t = await deliver({ nexthop: "broken.example" }, cf);
      assertEquals([...t.reply.results.values()], ["deferred"]);
      assertStringIncludes(
        t.log,
        "dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=broken.example type=MX: Host not found, try again)",
      );
    });
  },
);

Deno.test("smtp: the best MX host being this machine is a loop (5.4.6)", opts, async () => {
  await withDns([
    { name: "loop.example", type: "MX", value: "mx.loop.example", preference: 10 },
    { name: "mx.loop.example", type: "A", value: "127.0.0.9" },
  ], async (_d, cf) => {
    const r = await deliver({ nexthop: "loop.example" }, cf);
    assertEquals([...r.reply.results.values()], ["bounced"]);
    assertStringIncludes(
      r.log,
      "dsn=5.4.6, status=bounced (mail for loop.example loops back to myself)",
    );
  });
});

Deno.test("smtp: a recipient the first MX defers is tried at the next MX", opts, async () => {
  const first = await fakeServer({ host: "127.0.0.5", replies: { RCPT: "451 4.3.0 try later" } });
  const second = await fakeServer({ host: "127.0.0.6", port: first.port });
  try {
    await withDns([
      { name: "two.example", type: "MX", value: "a.two.example", preference: 10 },
      { name: "two.example", type: "MX", value: "b.two.example", preference: 20 },
      { name: "a.two.example", type: "A", value: "127.0.0.5" },
      { name: "b.two.example", type: "A", value: "127.0.0.6" },
    ], async (_d, cf) => {
      const r = await deliver({ nexthop: `two.example:${first.port}` }, cf);
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertStringIncludes(r.log, `relay=b.two.example[127.0.0.6]:${first.port}`);
      assertEquals(first.sessions.length, 1);
    });
  } finally {
    await first.close();
    await second.close();
  }
});

Deno.test(
  "smtp_fallback_relay takes the mail when the destination is unreachable",
  opts,
  async () => {
    const relay = await fakeServer({ host: "127.0.0.7" });
    try {
      await withDns([
        { name: "down.example", type: "A", value: "127.0.0.8" },
      ], async (_d, cf) => {
        const r = await deliver(
          { nexthop: `down.example:${relay.port}` },
          `${cf}\nsmtp_fallback_relay = [127.0.0.7]:${relay.port}`,
        );
        assertEquals([...r.reply.results.values()], ["sent"]);
        assertStringIncludes(r.log, `relay=127.0.0.7[127.0.0.7]:${relay.port}`);
      });
    } finally {
      await relay.close();
    }
  },
);

Deno.test("smtp_mx_address_limit bounds the addresses tried", opts, async () => {
  const late = await fakeServer({ host: "127.0.0.12" });
  try {
    await withDns([
      { name: "many.example", type: "MX", value: "a.many.example", preference: 10 },
      { name: "many.example", type: "MX", value: "b.many.example", preference: 20 },
      { name: "a.many.example", type: "A", value: "127.0.0.11" },
      { name: "b.many.example", type: "A", value: "127.0.0.12" },
    ], async (_d, cf) => {
      const r = await deliver(
        { nexthop: `many.example:${late.port}` },
        `${cf}\nsmtp_mx_address_limit = 1`,
      );
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(r.log, `connect to a.many.example[127.0.0.11]:${late.port}`);
      assertEquals(late.sessions.length, 0);
    });
  } finally {
    await late.close();
  }
});

Deno.test(
  "smtp_mx_session_limit bounds the sessions: a 421 greeting uses the only one",
  opts,
  async () => {
    const busy = await fakeServer({ host: "127.0.0.13", greeting: "421 4.3.2 busy" });
    const idle = await fakeServer({ host: "127.0.0.14", port: busy.port });
    try {
      await withDns([
        { name: "limit.example", type: "MX", value: "a.limit.example", preference: 10 },
        { name: "limit.example", type: "MX", value: "b.limit.example", preference: 20 },
        { name: "a.limit.example", type: "A", value: "127.0.0.13" },
        { name: "b.limit.example", type: "A", value: "127.0.0.14" },
      ], async (_d, cf) => {
        const one = await deliver(
          { nexthop: `limit.example:${busy.port}` },
          `${cf}\nsmtp_mx_session_limit = 1`,
        );
        assertEquals([...one.reply.results.values()], ["deferred"]);
        assertStringIncludes(
          one.log,
          "dsn=4.3.2, status=deferred (host a.limit.example[127.0.0.13] refused to talk to me: 421 4.3.2 busy)",
        );
        assertEquals(idle.sessions.length, 0);
        const two = await deliver({ nexthop: `limit.example:${busy.port}` }, cf);
        assertEquals([...two.reply.results.values()], ["sent"]);
        assertEquals(idle.sessions.length, 1);
      });
    } finally {
      await busy.close();
      await idle.close();
    }
  },
);
