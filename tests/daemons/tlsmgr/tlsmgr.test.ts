// tlsmgr under a real master: seed bytes from the PRNG pool and the
// exchange file, the smtpd and smtp session caches (btree tables) with
// lookup, update, delete and expiry, the shared ticket key, and bad
// requests refused with Postfix's warnings.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { PrngPool, TicketKeys } from "../../../daemons/tlsmgr/mod.ts";
import { TlsCacheType, TlsmgrClient } from "../../../lib/tlsmgr_client.ts";
import { captureLog } from "../../../lib/log.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("tlsmgr ticket keys rotate after their lifetime and stay valid for one more", () => {
  let now = 1_000_000;
  const keys = new TicketKeys(60, new PrngPool(), () => now);
  const first = keys.find()!;
  assertEquals(first.keys.length, 48);
  assertEquals(keys.find(), first);
  now += 61_000;
  const second = keys.find()!;
  assert(second !== first);
  assertEquals(keys.find(first.keys.subarray(0, 16)), first);
  now += 60_000;
  assertEquals(keys.find(first.keys.subarray(0, 16)), undefined);
});

Deno.test({
  ...opts,
  name: "tlsmgr under the master serves seeds, session caches and the ticket key",
  async fn() {
    const inst = await Instance.create(
      "tlsmgr unix - - n - 1 tlsmgr\n",
      "smtpd_tls_session_cache_database = btree:${data_directory}/smtpd_scache\n" +
        "smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache\n" +
        "smtp_tls_session_cache_timeout = 1s\n",
    );
    const lines: string[] = [];
    captureLog((l) => lines.push(l));
    const client = new TlsmgrClient(`${inst.queue}/private/tlsmgr`);
    try {
      const started = await inst.postfix("start");
      assertEquals(started.code, 0, started.stderr);

      const seed = await client.seed(16);
      assertEquals(seed?.length, 16);
      assert(seed!.some((b) => b !== 0));
      assertEquals(await client.seed(0), null);
      assertEquals(await client.policy("smtpd"), TlsCacheType.smtpd | TlsCacheType.smtp);

      // smtpd cache: miss, update, hit, delete.
      const data = new Uint8Array([0, 1, 2, 255, 10, 0]);
      assertEquals(await client.lookup("smtpd", "a1b2"), null);
      assert(await client.update("smtpd", "a1b2", data));
      assertEquals(await client.lookup("smtpd", "a1b2"), data);
      assert(await client.delete("smtpd", "a1b2"));
      assertEquals(await client.lookup("smtpd", "a1b2"), null);

      // smtp cache: entries expire after smtp_tls_session_cache_timeout.
      assert(await client.update("smtp", "smtp:[192.0.2.1]:25", data));
      assertEquals(await client.lookup("smtp", "smtp:[192.0.2.1]:25"), data);
      await new Promise((r) => setTimeout(r, 2100));
      assertEquals(await client.lookup("smtp", "smtp:[192.0.2.1]:25"), null);

      // No lmtp cache configured.
      assertEquals(await client.lookup("lmtp", "x"), null);
      assertEquals(await client.update("lmtp", "x", data), false);

      // The ticket key is shared: the same for every asker until it expires.
      const key = await client.ticketKey();
      assertEquals(key?.keys.length, 48);
      const again = await new TlsmgrClient(`${inst.queue}/private/tlsmgr`).ticketKey(key!.name);
      assertEquals(again?.keys, key!.keys);
      assertEquals(await client.ticketKey(new Uint8Array(16)), null);
      assert(key!.expires > Date.now() / 1000);

      // The PRNG exchange file is written at start.
      const exch = Deno.statSync(`${inst.dir}/data/prng_exch`);
      assertEquals(exch.size, 1024);
      assert(Deno.statSync(`${inst.dir}/data/smtpd_scache.db`).isFile);

      // The exchange file is saved again when tlsmgr exits.
      const before = Deno.readFileSync(`${inst.dir}/data/prng_exch`);
      client.close();
      assertEquals((await inst.postfix("stop")).code, 0);
      const after = await waitFor(() => {
        const now = Deno.readFileSync(`${inst.dir}/data/prng_exch`);
        return now.some((b, i) => b !== before[i]) && now;
      }, 5000);
      assert(after, "the exchange file was not rewritten at exit");

      const log = await waitFor(() => inst.readLog().includes("bogus seed") && inst.readLog());
      assertStringIncludes(log as string, "postfix/tlsmgr[");
      assertStringIncludes(log as string, 'warning: bogus seed length "0" in "seed" request');
      assertEquals(lines.filter((l) => l.includes("warning")), []);
    } finally {
      client.close();
      captureLog(undefined);
      await inst.destroy();
    }
  },
});
