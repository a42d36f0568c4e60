// trivial-rewrite started by Posthorn's master on demand, as master.cf's
// `rewrite unix - - n - - trivial-rewrite` line says, reached by daemons
// through the client library on queue/private/rewrite.

import { assert, assertEquals } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import {
  closeRewriteClients,
  resolveAddress,
  ResolveFlag,
  rewriteAddress,
} from "../../../lib/rewrite_client.ts";
import { projectRoot } from "../../run.ts";
import { Instance, serviceProcs, waitFor } from "../master/instance.ts";

const launcher = `${Deno.execPath()} run -A --unstable-ffi --unstable-net ` +
  `${projectRoot}tests/daemons/trivial_rewrite/launch.ts`;

Deno.test("the master starts trivial-rewrite for the first client and it answers", async () => {
  const saved = Deno.env.get("POSTHORN_LAUNCHER");
  Deno.env.set("POSTHORN_LAUNCHER", launcher);
  const inst = await Instance.create(
    "rewrite unix - - n - - trivial-rewrite\n",
    "myhostname = mail.example.com\nmydomain = example.com\ncompatibility_level = 3.6\n" +
      "relay_domains = relay.example\n",
  );
  try {
    const started = await inst.postfix("start");
    assertEquals(started.code, 0, started.stderr);
    await waitFor(() => {
      try {
        return Deno.statSync(`${inst.queue}/private/rewrite`).isSocket;
      } catch {
        return false;
      }
    });
    const config = loadConfig({ configDir: inst.dir });
    const [local, relay, rewritten] = await Promise.all([
      resolveAddress(config, "", "user"),
      resolveAddress(config, "alice@example.com", "bob@relay.example"),
      rewriteAddress(config, "local", "site!user"),
    ]);
    assertEquals(local, {
      transport: "local",
      nexthop: "mail.example.com",
      recipient: "user@mail.example.com",
      flags: ResolveFlag.CLASS_LOCAL,
    });
    assertEquals([relay.transport, relay.flags], ["relay", ResolveFlag.CLASS_RELAY]);
    assertEquals(rewritten, "user@site");
    assert(serviceProcs(inst.masterPid(), "rewrite").length >= 1);
  } finally {
    closeRewriteClients();
    if (saved === undefined) Deno.env.delete("POSTHORN_LAUNCHER");
    else Deno.env.set("POSTHORN_LAUNCHER", saved);
    await inst.destroy();
  }
});
