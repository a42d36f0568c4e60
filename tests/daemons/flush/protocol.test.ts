// flush(8)'s wire protocol, served in-process on a temporary socket: the
// protocol announcement, one request and one status per connection, and
// malformed requests refused as the reference refuses them.

import * as net from "node:net";
import { assertEquals } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { layoutFromConfig } from "../../../lib/queue/layout.ts";
import { encodeAttrs } from "../../../lib/ipc/attr.ts";
import { flushRequest, FlushStatus } from "../../../lib/flush_client.ts";
import { flushEnvFromConfig } from "../../../daemons/flush/service.ts";
import { serveFlush } from "../../../daemons/flush/mod.ts";

/** A flush service on DIR/queue/public/flush; returns the config and a stop function. */
async function serve() {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-flushp-" });
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nfast_flush_domains = example.com\nhash_queue_names = defer\n`,
  );
  for (const q of ["deferred", "incoming", "flush", "public"]) {
    await Deno.mkdir(`${dir}/queue/${q}`, { recursive: true });
  }
  const config = loadConfig({ configDir: dir });
  const env = flushEnvFromConfig(config, layoutFromConfig(config));
  env.trigger = () => Promise.resolve();
  const server = net.createServer((conn) => {
    serveFlush(conn, env, 5000).finally(() => conn.end());
  });
  const path = `${dir}/queue/public/flush`;
  await new Promise<void>((r) => server.listen(path, () => r()));
  const stop = async () => {
    await new Promise((r) => server.close(r));
    await Deno.remove(dir, { recursive: true });
  };
  return { config, dir, path, stop };
}

/** Sends raw bytes and returns everything the server wrote before closing. */
async function raw(path: string, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  await conn.write(bytes);
  await conn.closeWrite();
  let text = "";
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  conn.close();
  return text.replaceAll("\0", "|");
}

Deno.test("flush announces its protocol and answers one request with a status", async () => {
  const s = await serve();
  try {
    const got = await raw(
      s.path,
      encodeAttrs({ request: "add", site: "example.com", queue_id: "ABCDEF123" }),
    );
    assertEquals(got, "protocol|queue_flush_protocol||status|0||");
    assertEquals(Deno.readTextFileSync(`${s.dir}/queue/flush/example_com`), "ABCDEF123\n");
  } finally {
    await s.stop();
  }
});

Deno.test("flush answers BAD to a request without its attribute and nothing to an unknown one", async () => {
  const s = await serve();
  try {
    assertEquals(
      await raw(s.path, encodeAttrs({ request: "add", site: "example.com" })),
      "protocol|queue_flush_protocol||status|3||",
    );
    assertEquals(
      await raw(s.path, encodeAttrs({ request: "send_file" })),
      "protocol|queue_flush_protocol||status|3||",
    );
    assertEquals(
      await raw(s.path, encodeAttrs({ request: "bogus" })),
      "protocol|queue_flush_protocol||",
    );
  } finally {
    await s.stop();
  }
});

Deno.test("the flush client gets each status: ok, deny, bad, and fail with no service", async () => {
  const s = await serve();
  try {
    const ask = (r: Record<string, string>) => flushRequest(s.config, r);
    assertEquals(await ask({ request: "send_site", site: "example.com" }), FlushStatus.ok);
    assertEquals(await ask({ request: "send_site", site: "other.org" }), FlushStatus.deny);
    assertEquals(await ask({ request: "send_file", queue_id: "../x" }), FlushStatus.bad);
    assertEquals(await ask({ request: "rfrsh" }), FlushStatus.ok);
    assertEquals(await ask({ request: "purge" }), FlushStatus.ok);
    Deno.removeSync(s.path);
    assertEquals(await ask({ request: "purge" }), FlushStatus.fail);
  } finally {
    await s.stop();
  }
});

Deno.test("the master's wakeup trigger makes flush refresh its logfiles", async () => {
  const s = await serve();
  try {
    const deferred = `${s.dir}/queue/deferred/ABC123`;
    Deno.writeTextFileSync(deferred, "x", { mode: 0o700 });
    const log = `${s.dir}/queue/flush/example_com`;
    Deno.writeTextFileSync(log, "ABC123\n");
    const old = new Date(Date.now() - 13 * 3600_000);
    Deno.utimeSync(log, old, old);
    assertEquals(
      await raw(s.path, new TextEncoder().encode("W")),
      "protocol|queue_flush_protocol||",
    );
    assertEquals(Deno.readTextFileSync(log), "");
    assertEquals([...Deno.readDirSync(`${s.dir}/queue/incoming`)].map((e) => e.name), ["ABC123"]);
  } finally {
    await s.stop();
  }
});
