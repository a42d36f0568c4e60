// lib/rewrite_client.ts: the flag values Postfix's clients expect, one
// connection per process with one request in flight, the answer cache, giving up on a
// service that never answers, and an idle connection that does not keep a
// command alive.

import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { configFromText } from "../../lib/config/mod.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import {
  closeRewriteClients,
  describeResolveFlags,
  RESOLVE_CLASS_FINAL,
  resolveAddress,
  ResolveFlag,
  resolveVerifyAddress,
  rewriteAddress,
  RewriteClientError,
  rewriteServicePath,
} from "../../lib/rewrite_client.ts";
import { captureLog } from "../../lib/log.ts";
import { projectRoot } from "../run.ts";

Deno.test("ResolveFlag has the numeric values of Postfix's resolve_clnt.h", () => {
  assertEquals(
    [ResolveFlag.FINAL, ResolveFlag.ROUTED, ResolveFlag.ERROR, ResolveFlag.FAIL],
    [1, 2, 4, 8],
  );
  assertEquals(
    [
      ResolveFlag.CLASS_LOCAL,
      ResolveFlag.CLASS_ALIAS,
      ResolveFlag.CLASS_VIRTUAL,
      ResolveFlag.CLASS_RELAY,
      ResolveFlag.CLASS_DEFAULT,
    ],
    [256, 512, 1024, 2048, 4096],
  );
  assertEquals(RESOLVE_CLASS_FINAL, 256 | 512 | 1024);
  assertEquals(describeResolveFlags(4098), "ROUTED|CLASS_DEFAULT");
  assertEquals(describeResolveFlags(0), "0");
});

/** A stand-in service: answers each request after `delayMs`, recording what it got. */
function fakeService(dir: string, delayMs = 0, protocol = "trivial_rewrite_protocol") {
  const path = `${dir}/queue/private/rewrite`;
  Deno.mkdirSync(`${dir}/queue/private`, { recursive: true });
  const listener = Deno.listen({ transport: "unix", path });
  const requests: Map<string, string>[] = [];
  let connections = 0;
  let mostAtOnce = 0;
  const serve = async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        await conn.write(encodeAttrs({ protocol }));
        const reader = new AttrReader();
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          const lists = reader.push(buf.subarray(0, n));
          mostAtOnce = Math.max(mostAtOnce, lists.length);
          for (const req of lists) {
            requests.push(req);
            if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
            const reply = req.get("request") === "rewrite"
              ? encodeAttrs({ flags: 0, address: `${req.get("address")}@rewritten` })
              : encodeAttrs({
                flags: 0,
                transport: req.get("request") === "verify" ? "verify-smtp" : "smtp",
                nexthop: "hop",
                recipient: req.get("address")!,
              });
            // The resolve flags come as a second "flags" attribute, as Postfix sends them.
            const withFlags = req.get("request") === "rewrite" ? reply : new Uint8Array([
              ...reply.subarray(0, reply.length - 1),
              ...encodeAttrs({ flags: 4096 }),
            ]);
            await conn.write(withFlags).catch(() => {});
          }
        }
        conn.close();
      })();
    }
  };
  serve();
  return {
    requests,
    connections: () => connections,
    /** The most requests that arrived together (more than one: the client pipelined). */
    mostAtOnce: () => mostAtOnce,
    close: () => listener.close(),
  };
}

function configFor(dir: string, extra = ""): ReturnType<typeof configFromText> {
  return configFromText(dir, `queue_directory = ${dir}/queue\n${extra}`);
}

Deno.test("rewriteServicePath() is private/$rewrite_service_name under queue_directory", () => {
  assertEquals(rewriteServicePath(configFor("/x")), "/x/queue/private/rewrite");
  assertEquals(
    rewriteServicePath(configFor("/x", "rewrite_service_name = rw\n")),
    "/x/queue/private/rw",
  );
});

Deno.test("concurrent requests share one connection, one in flight at a time, answered in order", async () => {
  const dir = await Deno.makeTempDir();
  const svc = fakeService(dir, 5);
  try {
    const config = configFor(dir);
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => resolveAddress(config, "s@x", `r${i}@example.org`)),
    );
    answers.forEach((a, i) => {
      assertEquals(a, {
        transport: "smtp",
        nexthop: "hop",
        recipient: `r${i}@example.org`,
        flags: ResolveFlag.CLASS_DEFAULT,
      });
    });
    assertEquals(svc.connections(), 1);
    assertEquals(svc.mostAtOnce(), 1);
    assertEquals(svc.requests[0].get("sender"), "s@x");
    const verified = await resolveVerifyAddress(config, "", "v@example.org");
    assertEquals(verified.transport, "verify-smtp");
    assertEquals(svc.requests.at(-1)?.get("request"), "verify");
    assertEquals(await rewriteAddress(config, "local", "user"), "user@rewritten");
    assertEquals(svc.requests.at(-1)?.get("rule"), "local");
  } finally {
    closeRewriteClients();
    svc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recent answers come from the cache without asking the service again", async () => {
  const dir = await Deno.makeTempDir();
  const svc = fakeService(dir);
  try {
    const config = configFor(dir);
    const first = await resolveAddress(config, "", "same@example.org");
    first.recipient = "changed by the caller";
    const second = await resolveAddress(config, "", "same@example.org");
    assertEquals(second.recipient, "same@example.org");
    assertEquals(svc.requests.length, 1);
    // Another sender is another question (sender-dependent maps).
    await resolveAddress(config, "other@x", "same@example.org");
    assertEquals(svc.requests.length, 2);
  } finally {
    closeRewriteClients();
    svc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a server that speaks another protocol is refused", async () => {
  const dir = await Deno.makeTempDir();
  const svc = fakeService(dir, 0, "cleanup");
  const log: string[] = [];
  captureLog((line) => log.push(line));
  try {
    const config = configFor(dir, "ipc_timeout = 1s\n");
    await assertRejects(() => resolveAddress(config, "", "x@example.org"), RewriteClientError);
    assert(log.some((l) => l.includes("unexpected protocol from server: cleanup")), log.join("\n"));
    assertEquals(svc.requests.length > 0, true);
  } finally {
    captureLog(undefined);
    closeRewriteClients();
    svc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with no service, the client warns, retries, and gives up after ipc_timeout", async () => {
  const dir = await Deno.makeTempDir();
  const log: string[] = [];
  captureLog((line) => log.push(line));
  try {
    const config = configFor(dir, "ipc_timeout = 2s\n");
    const err = await assertRejects(
      () => resolveAddress(config, "", "x@example.org"),
      RewriteClientError,
    );
    assertMatch(err.message, /problem talking to service .*private\/rewrite/);
    assert(
      log.some((l) => /warning: problem talking to service private\/rewrite: connect to/.test(l)),
    );
  } finally {
    captureLog(undefined);
    closeRewriteClients();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an idle connection does not keep a command from exiting", async () => {
  const dir = await Deno.makeTempDir();
  const svc = fakeService(dir);
  try {
    const script = `${dir}/ask.ts`;
    await Deno.writeTextFile(
      script,
      `import { configFromText } from "${projectRoot}lib/config/mod.ts";\n` +
        `import { resolveAddress } from "${projectRoot}lib/rewrite_client.ts";\n` +
        `const c = configFromText("${dir}", "queue_directory = ${dir}/queue\\n");\n` +
        `console.log((await resolveAddress(c, "", "u@example.org")).transport);\n`,
    );
    const started = Date.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "smtp");
    assertEquals(out.code, 0);
    // Well under ipc_idle (5 s): the process did not wait for the idle timer.
    assert(Date.now() - started < 4500, `took ${Date.now() - started} ms`);
  } finally {
    svc.close();
    await Deno.remove(dir, { recursive: true });
  }
});
