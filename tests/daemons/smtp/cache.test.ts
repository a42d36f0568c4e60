// The smtp client's connection cache: requests served in-process by one
// agent with an in-process scache (the daemon's state and protocol code),
// several deliveries to one scripted server. A session is reused (RSET, no
// new greeting, conn_use= in the log) when qmgr's flags or
// smtp_connection_cache_destinations say so, within the reuse limits; a
// cached session the server closed meanwhile gives way to a new connection.

import * as net from "node:net";
import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { sendDeliverRequest } from "../../../lib/deliver/client.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { deliverSmtp } from "../../../daemons/smtp/deliver.ts";
import { smtpEnvFromConfig } from "../../../daemons/smtp/mod.ts";
import { cachePolicy, CONN_LOAD, CONN_STORE } from "../../../daemons/smtp/cache.ts";
import { ScacheState, serveScache } from "../../../daemons/scache/mod.ts";
import { acceptFd, closeFd, listenUnix, pollAsync, POLLIN } from "../../../lib/ffi/libc.ts";
import { serveAgent } from "../../lib/deliver/agent_harness.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "../qmgr/helpers.ts";
import { fakeServer, type FakeServerOptions, opts } from "./helpers.ts";

const BOTH = CONN_LOAD | CONN_STORE;

/** scache served in this process on `path` until close(). */
function inProcessScache(path: string, ttlLimit = 2) {
  const lfd = listenUnix(path, 16);
  const state = new ScacheState(ttlLimit);
  let open = true;
  const loop = (async () => {
    while (open) {
      // accept(2) only when a client waits: the listening socket blocks.
      if (await pollAsync([{ fd: lfd, events: POLLIN }], 100) <= 0 || !open) continue;
      const c = acceptFd(lfd);
      if (c >= 0) {
        serveScache(new net.Socket({ fd: c, readable: true, writable: true }), state, 5000)
          .catch(() => {});
      }
    }
  })();
  return {
    state,
    async close() {
      open = false;
      await loop;
      state.clear();
      closeFd(lfd);
    },
  };
}

/** One smtp agent with a connection cache, and a way to send it requests. */
async function cachingAgent(mainCf: string, withScache = true) {
  const q = await makeQueue();
  Deno.mkdirSync(`${q.layout.queueDirectory}/private`, { recursive: true });
  const scache = withScache
    ? inProcessScache(`${q.layout.queueDirectory}/private/scache`)
    : { close: () => Promise.resolve() };
  const config = configFromText(
    q.dir,
    [
      `queue_directory = ${q.layout.queueDirectory}`,
      "myhostname = client.example",
      "inet_interfaces = 127.0.0.9",
      "smtp_connect_timeout = 3s",
      "smtp_rset_timeout = 2s",
      mainCf,
    ].join("\n"),
  );
  const env = smtpEnvFromConfig(config, "smtp", "relay");
  env.layout = q.layout;
  const agent = await serveAgent(
    q.dir,
    { layout: q.layout, bounce: recordingBounce(), resolution: 2 },
    (s) => deliverSmtp(s, env),
  );
  return {
    /** Queues a message to `rcpt` and delivers it to `nexthop` with request `flags`; the log. */
    async send(nexthop: string, flags: number, rcpt = "rcpt@remote.example"): Promise<string> {
      const id = writeMessage(q, { recipients: [rcpt] }, "active");
      const msg = parseQueuedMessage(
        id,
        Deno.readFileSync(queueFilePath(q.layout, "active", id)),
      );
      return await withLog(async (lines) => {
        await sendDeliverRequest(agent.path, {
          flags,
          queueName: "active",
          queueId: id,
          dataOffset: msg.dataOffset,
          dataSize: msg.size,
          nexthop,
          encoding: "",
          smtputf8: 0,
          sender: msg.sender,
          envid: "",
          ret: 0,
          arrival: msg.arrival,
          active: msg.arrival,
          attrs: {},
          recipients: msg.recipients,
        });
        return lines.join("\n");
      });
    },
    async close() {
      env.cache?.client.close();
      await agent.close();
      await scache.close();
      await Deno.remove(q.dir, { recursive: true });
    },
  };
}

/** A scripted server and a caching agent, torn down after `fn`. */
async function withServer(
  mainCf: string,
  serverOpts: FakeServerOptions,
  fn: (
    a: Awaited<ReturnType<typeof cachingAgent>>,
    srv: Awaited<ReturnType<typeof fakeServer>>,
  ) => Promise<void>,
  withScache = true,
): Promise<void> {
  const srv = await fakeServer(serverOpts);
  const a = await cachingAgent(mainCf, withScache);
  try {
    await fn(a, srv);
  } finally {
    await a.close();
    await srv.close();
  }
}

Deno.test({
  ...opts,
  name: "smtp reuses a cached session when qmgr asks: RSET, no greeting, conn_use=2 in the log",
  async fn() {
    await withServer("", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      const first = await a.send(hop, BOTH);
      assertStringIncludes(first, `relay=127.0.0.1[127.0.0.1]:${srv.port}, delay=`);
      const second = await a.send(hop, BOTH);
      assertStringIncludes(
        second,
        `relay=127.0.0.1[127.0.0.1]:${srv.port}, conn_use=2, delay=`,
      );
      assertStringIncludes(second, "status=sent (250 2.0.0 Ok: queued as Q2)");
      const third = await a.send(hop, BOTH);
      assertStringIncludes(third, "conn_use=3, delay=");
      assertEquals(srv.sessions.length, 1);
      const lines = srv.sessions[0].lines;
      assertEquals(lines.filter((l) => l.startsWith("EHLO")).length, 1);
      assertEquals(lines.filter((l) => l === "RSET").length, 2);
      assertEquals(lines.includes("QUIT"), false);
      assertEquals(srv.sessions[0].messages.length, 3);
    });
  },
});

Deno.test({
  ...opts,
  name: "smtp without qmgr's cache flags ends each session with QUIT",
  async fn() {
    await withServer("", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, 0);
      const log = await a.send(hop, 0);
      assert(!log.includes("conn_use="), log);
      assertEquals(srv.sessions.length, 2);
      assert(srv.sessions.every((s) => s.lines.includes("QUIT")));
    });
  },
});

Deno.test({
  ...opts,
  name:
    "smtp_connection_cache_destinations caches without qmgr's flags; on_demand = no ignores them",
  async fn() {
    await withServer("smtp_connection_cache_destinations = 127.0.0.1", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, 0);
      assertStringIncludes(await a.send(hop, 0), "conn_use=2");
      assertEquals(srv.sessions.length, 1);
    });
    await withServer("smtp_connection_cache_on_demand = no", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, BOTH);
      await a.send(hop, BOTH);
      assertEquals(srv.sessions.length, 2);
    });
  },
});

Deno.test({
  ...opts,
  name: "smtp_connection_reuse_count_limit: a session used that often ends with QUIT",
  async fn() {
    await withServer("smtp_connection_reuse_count_limit = 2", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      for (let i = 0; i < 5; i++) await a.send(hop, BOTH);
      // Sessions of two deliveries each: 2 + 2 + 1.
      assertEquals(srv.sessions.map((s) => s.messages.length), [2, 2, 1]);
      assert(srv.sessions[0].lines.includes("QUIT"));
    });
  },
});

Deno.test({
  ...opts,
  name: "smtp_connection_reuse_time_limit: an old session is not cached again",
  async fn() {
    await withServer("smtp_connection_reuse_time_limit = 1s", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, BOTH);
      await new Promise((r) => setTimeout(r, 1100));
      // Still in the cache (2s), taken, used, then too old to go back.
      assertStringIncludes(await a.send(hop, BOTH), "conn_use=2");
      await a.send(hop, BOTH);
      assertEquals(srv.sessions.map((s) => s.messages.length), [2, 1]);
    });
  },
});

Deno.test({
  ...opts,
  name:
    "smtp: a cached session the server closed meanwhile is dropped and the mail goes over a new one",
  async fn() {
    await withServer("", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, BOTH);
      // The server hangs up on the idle session.
      await srv.close().catch(() => {});
      const again = await fakeServer({ port: srv.port });
      try {
        const log = await a.send(hop, BOTH);
        assertStringIncludes(log, "status=sent (250 2.0.0 Ok: queued as Q1)");
        assert(!log.includes("conn_use="), log);
        assertEquals(again.sessions.length, 1);
      } finally {
        await again.close();
      }
    });
  },
});

Deno.test({
  ...opts,
  name: "smtp: a cached session whose RSET is refused is closed and the mail goes over a new one",
  async fn() {
    await withServer("", { replies: { RSET: "421 4.3.0 going away" } }, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, BOTH);
      const log = await a.send(hop, BOTH);
      assertStringIncludes(log, "status=sent (250 2.0.0 Ok: queued as Q1)");
      assertEquals(srv.sessions.length, 2);
      assertEquals(srv.sessions[0].lines.at(-1), "RSET");
      assertEquals(srv.sessions[1].messages.length, 1);
    });
  },
});

Deno.test({
  ...opts,
  name:
    "smtp: the cached session serves other recipients of the destination, one request after another",
  async fn() {
    await withServer("", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      await a.send(hop, BOTH, "one@remote.example");
      const log = await a.send(hop, CONN_LOAD, "two@remote.example");
      // CONN_LOAD alone: taken from the cache, then ended (no store).
      assertStringIncludes(log, "to=<two@remote.example>");
      assertStringIncludes(log, "conn_use=2");
      assertEquals(srv.sessions.length, 1);
      assert(srv.sessions[0].lines.includes("QUIT"));
    });
  },
});

Deno.test("cachePolicy: listed destinations by name or as written; otherwise qmgr's flags when on demand", () => {
  const s = {
    onDemand: true,
    destinations: ["example.com", "[192.0.2.1]:587", "2001:db8::1"],
    timeLimit: 2,
    reuseTimeLimit: 300,
    reuseCountLimit: 0,
  };
  const both = { load: true, store: true };
  const none = { load: false, store: false };
  assertEquals(cachePolicy(s, 0, { text: "example.com", name: "example.com" }), both);
  assertEquals(cachePolicy(s, 0, { text: "[Example.COM]:25", name: "Example.COM" }), both);
  assertEquals(cachePolicy(s, 0, { text: "[192.0.2.1]:587", name: "192.0.2.1" }), both);
  assertEquals(cachePolicy(s, 0, { text: "[2001:db8::1]", name: "2001:db8::1" }), both);
  assertEquals(cachePolicy(s, 0, { text: "other.example", name: "other.example" }), none);
  assertEquals(
    cachePolicy(s, CONN_LOAD, { text: "other.example", name: "other.example" }),
    { load: true, store: false },
  );
  assertEquals(
    cachePolicy({ ...s, onDemand: false }, BOTH, { text: "other.example", name: "other.example" }),
    none,
  );
});

Deno.test({
  ...opts,
  name: "smtp: without a running scache the session is kept and ended with QUIT, with a warning",
  async fn() {
    await withServer("", {}, async (a, srv) => {
      const hop = `[127.0.0.1]:${srv.port}`;
      const log = await a.send(hop, BOTH);
      assertStringIncludes(log, "status=sent (250 2.0.0 Ok: queued as Q1)");
      assertStringIncludes(log, "scache_clnt_save_endp: ");
      await a.send(hop, BOTH);
      assertEquals(srv.sessions.length, 2);
      await new Promise((r) => setTimeout(r, 50));
      assert(srv.sessions.every((s) => s.lines.at(-1) === "QUIT"), JSON.stringify(srv.sessions));
    }, false);
  },
});
