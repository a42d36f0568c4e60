// verify(8) in a whole instance: queries send probes through cleanup and
// qmgr to the agents, which report deliverable or undeliverable to verify
// instead of delivering; later queries answer from the cache.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { AddrStatus, verifyQuery, VerifyStat, verifyUpdate } from "../../../lib/verify_client.ts";
import { startInstance } from "./instance.ts";

Deno.test("verify probes find deliverable and undeliverable addresses and cache them", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const inst = await startInstance(["address_verify_poll_count = 1"]);
  try {
    const config = loadConfig({ configDir: inst.dir });
    // The first query starts the probes and answers "in progress".
    for (const addr of ["user@ok.example", "user@bad.example", "user@later.example"]) {
      const first = await verifyQuery(config, addr);
      assertEquals(first, { status: AddrStatus.TODO, why: "Address verification in progress" });
    }
    const answer = async (addr: string, want: number) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await verifyQuery(config, addr);
        if (r.status === want || Date.now() > deadline) return r;
        await new Promise((ok) => setTimeout(ok, 200));
      }
    };
    assertEquals(await answer("user@ok.example", AddrStatus.OK), {
      status: AddrStatus.OK,
      why: "delivered nowhere",
    });
    assertEquals(await answer("user@bad.example", AddrStatus.BOUNCE), {
      status: AddrStatus.BOUNCE,
      why: "no such user here",
    });
    assertEquals(await answer("user@later.example", AddrStatus.DEFER), {
      status: AddrStatus.DEFER,
      why: "try again later",
    });
    const log = inst.readLog();
    assertStringIncludes(log, "from=<double-bounce@example.com>");
    assertStringIncludes(log, "to=<user@ok.example>, relay=none, delay=");
    assertStringIncludes(log, "dsn=2.0.0, status=deliverable (delivered nowhere)");
    assertStringIncludes(log, "dsn=5.1.1, status=undeliverable (no such user here)");
    assertStringIncludes(log, "dsn=4.4.1, status=undeliverable (try again later)");
    // Probes are never delivered, bounced or deferred: nothing is left in the queue.
    assert(!/non-delivery notification|status=sent|status=bounced/.test(log), log);
    // A failed update does not clobber a deliverable address.
    assertEquals(
      await verifyUpdate(config, "user@ok.example", AddrStatus.BOUNCE, "gone"),
      VerifyStat.OK,
    );
    assertEquals((await verifyQuery(config, "user@ok.example")).status, AddrStatus.OK);
    // The cache is the btree table in data_directory.
    assert(Deno.statSync(`${inst.dir}/data/verify_cache.db`).isFile);
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});
