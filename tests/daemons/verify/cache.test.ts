// The verify(8) cache rules (expiry, refresh, negative caching, the
// deliverable-address guard, cleanup), the table store and the probe sender.

import { assert, assertEquals } from "../../assert.ts";
import {
  type CacheSettings,
  formatEntry,
  IN_PROGRESS,
  memoryStore,
  parseEntry,
  PROBE_TTL,
  VerifyCache,
} from "../../../daemons/verify/cache.ts";
import { tableStore } from "../../../daemons/verify/store.ts";
import { probeSender } from "../../../daemons/verify/probe.ts";
import { AddrStatus, VerifyStat } from "../../../lib/verify_client.ts";

const settings: CacheSettings = {
  positiveExpire: 31 * 86400,
  positiveRefresh: 7 * 86400,
  negativeCache: true,
  negativeExpire: 3 * 86400,
  negativeRefresh: 3 * 3600,
};

function cacheAt(start: number, s = settings) {
  const clock = { now: start };
  const store = memoryStore();
  return { clock, store, cache: new VerifyCache(store, s, () => clock.now) };
}

Deno.test("verify cache: an unknown address is in progress and sends one probe", async () => {
  const { cache, clock } = cacheAt(1_000_000);
  assertEquals(await cache.query("a@example.com"), {
    status: AddrStatus.TODO,
    why: IN_PROGRESS,
    probe: true,
  });
  clock.now += 10;
  // The probe is in flight: no second one.
  assertEquals((await cache.query("a@example.com")).probe, false);
  clock.now += PROBE_TTL;
  // Lost after PROBE_TTL: probed again.
  assertEquals((await cache.query("a@example.com")).probe, true);
});

Deno.test("verify cache: a positive result is answered until it expires, refreshed after the refresh time", async () => {
  const { cache, clock } = cacheAt(1_000_000);
  await cache.query("a@example.com");
  assertEquals(await cache.update("a@example.com", AddrStatus.OK, "delivered to mailbox"), 0);
  assertEquals(await cache.query("a@example.com"), {
    status: AddrStatus.OK,
    why: "delivered to mailbox",
    probe: false,
  });
  clock.now += settings.positiveRefresh + 1;
  assertEquals(await cache.query("a@example.com"), {
    status: AddrStatus.OK,
    why: "delivered to mailbox",
    probe: true,
  });
  clock.now += settings.positiveExpire;
  assertEquals((await cache.query("a@example.com")).status, AddrStatus.TODO);
});

Deno.test("verify cache: a failed probe does not replace a deliverable address", async () => {
  const { cache } = cacheAt(1_000_000);
  await cache.update("a@example.com", AddrStatus.OK, "ok");
  await cache.update("a@example.com", AddrStatus.BOUNCE, "no such user");
  assertEquals((await cache.query("a@example.com")).status, AddrStatus.OK);
  await cache.update("b@example.com", AddrStatus.DEFER, "try later");
  await cache.update("b@example.com", AddrStatus.BOUNCE, "no such user");
  assertEquals(await cache.query("b@example.com"), {
    status: AddrStatus.BOUNCE,
    why: "no such user",
    probe: false,
  });
});

Deno.test("verify cache: negative results are refreshed after the negative refresh time and expire", async () => {
  const { cache, clock } = cacheAt(1_000_000);
  await cache.update("b@example.com", AddrStatus.BOUNCE, "no such user");
  clock.now += settings.negativeRefresh + 1;
  assertEquals((await cache.query("b@example.com")).probe, true);
  clock.now += settings.negativeExpire;
  assertEquals((await cache.query("b@example.com")).status, AddrStatus.TODO);
});

Deno.test("verify cache: without negative caching an unanswered address leaves no entry", async () => {
  const { cache, store } = cacheAt(1_000_000, { ...settings, negativeCache: false });
  assertEquals((await cache.query("c@example.com")).probe, true);
  assertEquals(await store.get("c@example.com"), undefined);
});

Deno.test("verify cache: a bad status is refused", async () => {
  const { cache } = cacheAt(1_000_000);
  assertEquals(await cache.update("a@example.com", 7, "x"), VerifyStat.BAD);
  assertEquals(await cache.update("a@example.com", AddrStatus.TODO, "x"), VerifyStat.BAD);
});

Deno.test("verify cache: entries keep Postfix's status:probed:updated:text form", () => {
  const e = { status: 2, probed: 0, updated: 1700000000, text: "5.1.1 no: such user" };
  assertEquals(formatEntry(e), "2:0:1700000000:5.1.1 no: such user");
  assertEquals(parseEntry(formatEntry(e)), e);
  assertEquals(parseEntry("0:0:0:never"), null);
  assertEquals(parseEntry("9:1:1:bad status"), null);
  assertEquals(parseEntry("garbage"), null);
});

Deno.test("verify cache: cleanup drops expired and malformed entries only", async () => {
  const { cache, store, clock } = cacheAt(1_000_000);
  await cache.update("old@example.com", AddrStatus.BOUNCE, "gone");
  await store.put("bad@example.com", "not an entry");
  clock.now += settings.negativeExpire + 1;
  await cache.update("new@example.com", AddrStatus.OK, "fine");
  assertEquals(await cache.cleanup(), { retained: 1, dropped: 2 });
  assertEquals(await store.get("old@example.com"), undefined);
  assert(await store.get("new@example.com"));
});

Deno.test("verify cache in a btree table survives a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "verify-test-" });
  try {
    const spec = `btree:${dir}/data/verify_cache`;
    const s1 = tableStore(spec);
    const c1 = new VerifyCache(s1, settings, () => 1_000_000);
    await c1.update("Mixed@Example.com", AddrStatus.OK, "delivered to mailbox");
    await c1.update("b@example.com", AddrStatus.BOUNCE, "no such user");
    await s1.del("b@example.com");
    await s1.flush!();
    const s2 = tableStore(spec);
    const c2 = new VerifyCache(s2, settings, () => 1_000_100);
    assertEquals(await c2.query("Mixed@Example.com"), {
      status: AddrStatus.OK,
      why: "delivered to mailbox",
      probe: false,
    });
    assertEquals((await c2.query("b@example.com")).status, AddrStatus.TODO);
    assert(Deno.statSync(`${dir}/data/verify_cache.db`).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probeSender() appends the base-31 time slot to the local part with a ttl", () => {
  const cfg = (sender: string, ttl: number) => ({
    get: (n: string) => (n === "address_verify_sender" ? sender : ""),
    time: (_: string) => ttl,
  });
  assertEquals(probeSender(cfg("double-bounce", 0), 1e9), "double-bounce");
  assertEquals(probeSender(cfg("<>", 3600), 1e9), "");
  assertEquals(probeSender(cfg("", 3600), 1e9), "");
  // 1e9 / 31 = 32258064 = base 31 "13BHM8" in the alphabet 0-9 B C D F G H J ...
  const slot = Math.floor(1e9 / 31);
  let n = slot;
  let text = "";
  const alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
  while (n > 0) {
    text = alphabet[n % 31] + text;
    n = Math.floor(n / 31);
  }
  assertEquals(probeSender(cfg("probe@example.com", 31), 1e9), `probe${text}@example.com`);
  assertEquals(probeSender(cfg("probe", 31), 1e9), `probe${text}`);
});
