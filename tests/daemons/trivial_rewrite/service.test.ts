// The trivial-rewrite service in a real process, reached through its socket
// with the client library: the golden answers again, many clients at once,
// and bad input (garbage, unknown requests, over-long input) that costs the
// misbehaving client its connection and nobody else anything.

import { assert, assertEquals, assertMatch } from "../../assert.ts";
import { AttrReader, encodeAttrs } from "../../../lib/ipc/attr.ts";
import {
  closeRewriteClients,
  resolveAddress,
  ResolveFlag,
  resolveVerifyAddress,
  rewriteAddress,
} from "../../../lib/rewrite_client.ts";
import { caseNames, formatAnswer, GOLDEN_DIR, readCases } from "./cases.ts";
import { type RewriteService, startService } from "./instance.ts";

const BASE = "compatibility_level = 3.6\nmyhostname = mail.example.com\nmydomain = example.com\n" +
  "inet_interfaces = loopback-only\n";

/** A raw connection for speaking (or mangling) the protocol by hand. */
async function rawClient(socket: string) {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const reader = new AttrReader();
  const lists: Map<string, string>[] = [];
  const buf = new Uint8Array(65536);
  const client = {
    conn,
    async send(bytes: Uint8Array) {
      let at = 0;
      while (at < bytes.length) at += await conn.write(bytes.subarray(at));
    },
    /** The next reply, or null when the service hung up. */
    async reply(): Promise<Map<string, string> | null> {
      while (lists.length === 0) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return null;
        lists.push(...reader.push(buf.subarray(0, n)));
      }
      return lists.shift()!;
    },
    close() {
      try {
        conn.close();
      } catch {
        // Closed by the service.
      }
    },
  };
  const greeting = await client.reply();
  assertEquals(greeting?.get("protocol"), "trivial_rewrite_protocol");
  return client;
}

async function withService(
  mainCf: string,
  files: Record<string, string>,
  fn: (svc: RewriteService) => Promise<void>,
): Promise<void> {
  const svc = await startService(mainCf, files);
  try {
    await fn(svc);
  } finally {
    closeRewriteClients();
    await svc.stop();
    await Deno.remove(svc.dir, { recursive: true });
  }
}

Deno.test("resolveAddress and rewriteAddress through the socket give the golden answers", async () => {
  for (const name of caseNames()) {
    const cases = readCases(name);
    await withService(cases.mainCf, cases.files, async (svc) => {
      // All at once: the client queues them on its one connection.
      const answers = await Promise.all(cases.queries.map(async (q) => {
        if (q.request === "rewrite") {
          const address = await rewriteAddress(svc.config, q.second, q.address);
          return formatAnswer(q, new Map([["address", address]]));
        }
        const ask = q.request === "verify" ? resolveVerifyAddress : resolveAddress;
        const r = await ask(svc.config, q.second, q.address);
        return formatAnswer(q, new Map(Object.entries(r).map(([k, v]) => [k, String(v)])));
      }));
      const expected = Deno.readTextFileSync(`${GOLDEN_DIR}${name}.ref`).trimEnd().split("\n");
      assertEquals(answers, expected, name);
    });
  }
});

Deno.test("the service serves many clients at once", async () => {
  await withService(BASE, {}, async (svc) => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => rawClient(svc.socket)));
    try {
      await Promise.all(
        clients.map((c, i) =>
          c.send(encodeAttrs({ request: "resolve", sender: "", address: `u${i}@example.org` }))
        ),
      );
      const replies = await Promise.all(clients.map((c) => c.reply()));
      replies.forEach((r, i) => {
        assertEquals(r?.get("recipient"), `u${i}@example.org`);
        assertEquals(Number(r?.get("flags")), ResolveFlag.CLASS_DEFAULT);
      });
    } finally {
      clients.forEach((c) => c.close());
    }
  });
});

Deno.test("garbage on the socket: a warning, that client dropped, the others served", async () => {
  await withService(BASE, {}, async (svc) => {
    const good = await rawClient(svc.socket);
    const cases: [Uint8Array, RegExp][] = [
      [encodeAttrs({ request: "bogus" }), /warning: bad command bogus/],
      [
        encodeAttrs({ request: "resolve", address: "x" }),
        /warning: unexpected attribute address from private\/rewrite socket \(expecting: sender\)/,
      ],
      [
        encodeAttrs({ request: "rewrite", rule: "nonsense", address: "x" }),
        /warning: unknown context: nonsense/,
      ],
      [
        encodeAttrs({ sender: "", address: "x" }),
        /warning: unexpected attribute sender from private\/rewrite socket \(expecting: request\)/,
      ],
      [
        encodeAttrs({ request: "resolve", sender: "" }),
        /warning: missing attribute address in input from private\/rewrite socket/,
      ],
    ];
    for (const [bytes, warning] of cases) {
      const bad = await rawClient(svc.socket);
      await bad.send(bytes);
      assertEquals(await bad.reply(), null, "the misbehaving client is dropped");
      bad.close();
      assertMatch(svc.maillog(), warning);
      await good.send(encodeAttrs({ request: "resolve", sender: "", address: "user" }));
      assertEquals((await good.reply())?.get("recipient"), "user@mail.example.com");
    }
    // One attribute too many is noted, and the request still answered.
    await good.send(encodeAttrs({ request: "resolve", sender: "", address: "u", extra: "y" }));
    assertEquals((await good.reply())?.get("recipient"), "u@mail.example.com");
    assertMatch(
      svc.maillog(),
      /warning: unexpected attribute extra from private\/rewrite socket \(expecting: \(list terminator\)\)/,
    );
    // Bytes that never make an attribute list, then end of input.
    const junk = await rawClient(svc.socket);
    await junk.send(new TextEncoder().encode("garbage without any terminator"));
    await junk.conn.closeWrite();
    assertEquals(await junk.reply(), null);
    junk.close();
    await new Promise((r) => setTimeout(r, 100));
    assertMatch(svc.maillog(), /warning: unexpected end-of-input from private\/rewrite socket/);
    good.close();
  });
});

Deno.test("an endless request is cut off at 1 MB; a long address is answered", async () => {
  await withService(BASE, {}, async (svc) => {
    const long = "x".repeat(100_000) + "@example.org";
    const r = await resolveAddress(svc.config, "", long);
    assertEquals(r.recipient, long);
    assertEquals(r.nexthop, "example.org");
    const flood = await rawClient(svc.socket);
    const chunk = new TextEncoder().encode("a".repeat(65536));
    let dropped = false;
    for (let i = 0; i < 40 && !dropped; i++) {
      await flood.send(chunk).catch(() => dropped = true);
    }
    assertEquals(await flood.reply(), null);
    flood.close();
    assertMatch(
      svc.maillog(),
      /warning: request from private\/rewrite socket exceeds 1048576 bytes/,
    );
    // Still serving.
    const after = await resolveAddress(svc.config, "", "someone@example.net");
    assertEquals(after.transport, "smtp");
  });
});

Deno.test("the client reconnects after the service restarts", async () => {
  const svc = await startService(BASE, {});
  try {
    assertEquals((await resolveAddress(svc.config, "", "a@example.org")).nexthop, "example.org");
    await svc.stop();
    const again = await startService(BASE + "relayhost = [gw.example]\n", {}, svc.dir);
    try {
      // A new question (the cache would answer an old one without the service).
      const r = await resolveAddress(svc.config, "", "b@example.org");
      assertEquals(r.nexthop, "[gw.example]");
      assert(!(r.flags & ResolveFlag.FAIL));
    } finally {
      closeRewriteClients();
      await again.stop();
    }
  } finally {
    await Deno.remove(svc.dir, { recursive: true });
  }
});

Deno.test("an empty transport parameter stops the service as Postfix's does", async () => {
  const svc = await startService(BASE + "default_transport =\n", {});
  try {
    const status = await svc.child.status;
    assertEquals(status.code, 1);
    assertMatch(svc.maillog(), /fatal: bad string length 0 < 1: default_transport = /);
  } finally {
    await svc.stop();
    await Deno.remove(svc.dir, { recursive: true });
  }
});

Deno.test("a rebuilt table is picked up without a restart", async () => {
  const files = { transport: "example.org smtp:[old-hop.example]\n" };
  await withService(BASE + "transport_maps = texthash:$dir/transport\n", files, async (svc) => {
    assertEquals(
      (await resolveAddress(svc.config, "", "a@example.org")).nexthop,
      "[old-hop.example]",
    );
    const path = `${svc.dir}/transport`;
    await Deno.writeTextFile(path, "example.org smtp:[new-hop.example]\n");
    const later = new Date(Date.now() + 10_000);
    await Deno.utime(path, later, later);
    await new Promise((r) => setTimeout(r, 1100));
    // A new question: the client's cache would answer the old one.
    assertEquals(
      (await resolveAddress(svc.config, "", "b@example.org")).nexthop,
      "[new-hop.example]",
    );
    assertMatch(svc.maillog(), /table texthash:\S+\/transport has changed -- reloading/);
  });
});

Deno.test("a request that arrives a few bytes at a time is answered", async () => {
  await withService(BASE, {}, async (svc) => {
    const client = await rawClient(svc.socket);
    try {
      const bytes = encodeAttrs({ request: "resolve", sender: "", address: "slow@example.org" });
      for (let at = 0; at < bytes.length; at += 7) {
        await client.send(bytes.subarray(at, at + 7));
        await new Promise((r) => setTimeout(r, 5));
      }
      assertEquals((await client.reply())?.get("recipient"), "slow@example.org");
      // And the connection serves the next one.
      await client.send(encodeAttrs({ request: "rewrite", rule: "local", address: "u" }));
      assertEquals((await client.reply())?.get("address"), "u@mail.example.com");
    } finally {
      client.close();
    }
  });
});
