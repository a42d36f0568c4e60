// proxy:type:name tables against an in-process proxymap/proxywrite service:
// lookups, the flags on the wire, refusal of unapproved tables, updates and
// deletions only through proxywrite, sequence, one shared connection, and a
// rebuilt table picked up.

import * as net from "node:net";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { defaultFlags, DictError, openMap } from "../../maps/mod.ts";
import {
  closeProxyStreams,
  decodeDictFlags,
  encodeDictFlags,
  ProxyStatus,
} from "../../maps/proxy.ts";
import { ProxyService } from "../../daemons/proxymap/service.ts";
import { serveProxy } from "../../daemons/proxymap/mod.ts";

interface Served {
  dir: string;
  config: ReturnType<typeof loadConfig>;
  requests: number;
  stop(): Promise<void>;
}

/** proxymap and proxywrite on DIR/queue/private/, with a hash table DIR/access. */
async function serve(): Promise<Served> {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-proxy-" });
  await Deno.mkdir(`${dir}/queue/private`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    [
      `queue_directory = ${dir}/queue`,
      `proxy_read_maps = proxy:hash:${dir}/access, proxy:texthash:${dir}/text, hash:${dir}/plain,` +
      ` unionmap:{static:x, proxy:texthash:${dir}/member}`,
      `proxy_write_maps = proxy:hash:${dir}/access`,
    ].join("\n") + "\n",
  );
  const build = openMap(`hash:${dir}/access`, { create: true, write: true });
  await build.update("alice@example.com", "OK");
  await build.update("bob@example.com", "REJECT no bob");
  await build.close();
  await Deno.writeTextFile(`${dir}/text`, "k1 v1\n");
  await Deno.writeTextFile(`${dir}/plain`, "x y\n");
  await Deno.writeTextFile(`${dir}/member`, "m1 in-union\n");
  const config = loadConfig({ configDir: dir });
  const servers: net.Server[] = [];
  const served: Served = {
    dir,
    config,
    requests: 0,
    async stop() {
      closeProxyStreams();
      for (const s of servers) await new Promise((r) => s.close(r));
      await Deno.remove(dir, { recursive: true });
    },
  };
  for (const write of [false, true]) {
    const service = new ProxyService(config, write);
    const handle = service.handle.bind(service);
    service.handle = (request, seq) => {
      served.requests++;
      return handle(request, seq);
    };
    const server = net.createServer((conn) => {
      serveProxy(conn, service).finally(() => conn.destroy());
    });
    const path = `${dir}/queue/private/${write ? "proxywrite" : "proxymap"}`;
    await new Promise<void>((r) => server.listen(path, () => r()));
    servers.push(server);
  }
  return served;
}

Deno.test("encodeDictFlags() uses Postfix's DICT_FLAG bits and decodeDictFlags() reverses it", () => {
  const flags = defaultFlags();
  // DUP_WARN | TRY0NULL | TRY1NULL | FOLD_FIX
  assertEquals(encodeDictFlags(flags), 1 | 4 | 8 | (1 << 14));
  assertEquals(decodeDictFlags(encodeDictFlags(flags)), flags);
  const other = defaultFlags({ foldFix: false, utf8: true, dupReplace: true });
  assertEquals(decodeDictFlags(encodeDictFlags(other)), other);
});

Deno.test("a proxy:hash table answers lookups through proxymap", async () => {
  const s = await serve();
  try {
    const t = openMap(`proxy:hash:${s.dir}/access`, { config: s.config });
    assertEquals(t.type, "proxy");
    assertEquals(await t.lookup("alice@example.com"), "OK");
    assertEquals(await t.lookup("BOB@example.com"), "REJECT no bob");
    assertEquals(await t.lookup("nobody@example.com"), undefined);
    const text = openMap(`proxy:texthash:${s.dir}/text`, { config: s.config });
    assertEquals(await text.lookup("k1"), "v1");
    // A proxy: member of a unionmap listed in proxy_read_maps is approved too.
    const member = openMap(`proxy:texthash:${s.dir}/member`, { config: s.config });
    assertEquals(await member.lookup("m1"), "in-union");
    assertEquals(s.requests, 5);
  } finally {
    await s.stop();
  }
});

Deno.test("a table not listed in proxy_read_maps is refused with Postfix's words", async () => {
  const s = await serve();
  const lines: string[] = [];
  captureLog((l) => lines.push(l));
  try {
    for (const name of [`hash:${s.dir}/other`, `hash:${s.dir}/plain`]) {
      const t = openMap(`proxy:${name}`, { config: s.config });
      const err = await assertRejects(() => t.lookup("x"), DictError);
      assertEquals(err.message, `proxymap service is not configured for table "${name}"`);
    }
    assert(
      lines.some((l) => l.includes(`warning: request for unapproved table: "hash:${s.dir}/other"`)),
    );
    assert(
      lines.some((l) =>
        l.includes(
          `warning: to approve this table for read-only access, list proxy:hash:${s.dir}/other in main.cf:proxy_read_maps`,
        )
      ),
      lines.join("\n"),
    );
  } finally {
    captureLog(undefined);
    await s.stop();
  }
});

Deno.test("updates and deletions go through proxywrite; a read-only proxy table refuses them", async () => {
  const s = await serve();
  try {
    const ro = openMap(`proxy:hash:${s.dir}/access`, { config: s.config });
    await assertRejects(() => ro.update("k", "v"), DictError, "update operation is not supported");
    const rw = openMap(`proxy:hash:${s.dir}/access`, { config: s.config, write: true });
    assertEquals(await rw.update("carol@example.com", "DISCARD"), "stored");
    assertEquals(await rw.delete("alice@example.com"), true);
    assertEquals(await rw.delete("alice@example.com"), false);
    await rw.close();
    const direct = openMap(`hash:${s.dir}/access`);
    assertEquals(await direct.lookup("carol@example.com"), "DISCARD");
    assertEquals(await direct.lookup("alice@example.com"), undefined);
    await direct.close();
    // The read-only service sees the change: the rebuilt file is reopened.
    await new Promise((r) => setTimeout(r, 1100));
    assertEquals(await ro.lookup("carol@example.com"), "DISCARD");
  } finally {
    await s.stop();
  }
});

Deno.test("sequence walks a proxied table entry by entry", async () => {
  const s = await serve();
  try {
    const t = openMap(`proxy:hash:${s.dir}/access`, { config: s.config });
    const entries: [string, string][] = [];
    for await (const e of t.sequence()) entries.push(e);
    assertEquals(entries.sort(), [
      ["alice@example.com", "OK"],
      ["bob@example.com", "REJECT no bob"],
    ]);
  } finally {
    await s.stop();
  }
});

Deno.test("the proxymap service answers malformed requests with BAD", async () => {
  const s = await serve();
  try {
    const service = new ProxyService(s.config, false);
    const seq = new Map();
    const ask = (r: Record<string, string>) => service.handle(new Map(Object.entries(r)), seq);
    const status = async (r: Record<string, string>) => (await ask(r)).status;
    const table = `hash:${s.dir}/access`;
    assertEquals(await status({ request: "lookup", table, flags: "x", key: "k" }), ProxyStatus.bad);
    assertEquals(await status({ request: "lookup", flags: "0", key: "k" }), ProxyStatus.bad);
    assertEquals(await status({ request: "lookup", table, flags: "16396" }), ProxyStatus.bad);
    assertEquals(await status({ request: "frobnicate", table, flags: "0" }), ProxyStatus.bad);
    assertEquals(
      await status({ request: "sequence", table, flags: "0", function: "1" }),
      ProxyStatus.bad,
    );
    assertEquals(
      await status({ request: "delete", table, flags: "0", key: "k" }),
      ProxyStatus.deny,
    );
    // Every reply carries its request type's attributes, empty on failure.
    assertEquals(await ask({ request: "open", table, flags: "16396" }), {
      status: ProxyStatus.ok,
      flags: 16,
    });
    assertEquals(await ask({ request: "open", table: "hash:/nowhere", flags: "16396" }), {
      status: ProxyStatus.deny,
      flags: 0,
    });
    assertEquals(await ask({ request: "lookup", table: "hash:/nowhere", flags: "0", key: "k" }), {
      status: ProxyStatus.deny,
      value: "",
    });
  } finally {
    await s.stop();
  }
});

Deno.test("a client that cannot reach private/proxymap uses public/proxymap and reconnects after a close", async () => {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-proxy-pub-" });
  try {
    await Deno.mkdir(`${dir}/queue/public`, { recursive: true });
    await Deno.writeTextFile(`${dir}/text`, "k1 v1\nk2 v2\n");
    await Deno.writeTextFile(
      `${dir}/main.cf`,
      `queue_directory = ${dir}/queue\nproxy_read_maps = proxy:texthash:${dir}/text\n`,
    );
    const config = loadConfig({ configDir: dir });
    const service = new ProxyService(config, false);
    let connections = 0;
    // Each connection serves one request, as a process at its max_use would.
    const server = net.createServer((conn) => {
      connections++;
      const once = Object.create(service) as ProxyService;
      once.handle = async (request, seq) => {
        const reply = await service.handle(request, seq);
        // Closed just after this reply is written.
        setTimeout(() => conn.destroy(), 10);
        return reply;
      };
      serveProxy(conn, once).finally(() => conn.destroy());
    });
    await new Promise<void>((r) => server.listen(`${dir}/queue/public/proxymap`, () => r()));
    try {
      const t = openMap(`proxy:texthash:${dir}/text`, { config });
      assertEquals(await t.lookup("k1"), "v1");
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(await t.lookup("k2"), "v2");
      assertEquals(connections, 2);
    } finally {
      closeProxyStreams();
      await new Promise((r) => server.close(r));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
