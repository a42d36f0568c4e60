// verify(8) cache figures: updates and queries per second against the
// address_verify_map default (a btree table, SQLite-backed: each update
// commits through its own write handle) and against memory (an empty
// address_verify_map). The reference keeps its cache in Berkeley DB and has
// no in-process interface to time it by, so no reference figure is printed.

import { memoryStore, VerifyCache } from "../../daemons/verify/cache.ts";
import { tableStore } from "../../daemons/verify/store.ts";

const settings = {
  positiveExpire: 31 * 86400,
  positiveRefresh: 7 * 86400,
  negativeCache: true,
  negativeExpire: 3 * 86400,
  negativeRefresh: 3 * 3600,
};

async function rate(label: string, n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const s = (performance.now() - t0) / 1000;
  console.log(`${label}: ${Math.round(n / s)}/s (${n} in ${s.toFixed(2)} s)`);
}

/** Prints the cache figures. */
export async function bench(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "verify-bench-" });
  try {
    for (
      const [name, store] of [
        ["btree", tableStore(`btree:${dir}/verify_cache`)],
        ["memory", memoryStore()],
      ] as const
    ) {
      const cache = new VerifyCache(store, settings);
      const n = name === "btree" ? 2000 : 50_000;
      await rate(
        `verify cache ${name} update`,
        n,
        (i) => cache.update(`u${i}@example.com`, 0, "ok"),
      );
      await rate(`verify cache ${name} query (hit)`, n, (i) => cache.query(`u${i}@example.com`));
      await store.flush?.();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
