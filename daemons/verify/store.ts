// The verify cache in a lookup table (address_verify_map): hash and btree
// tables are SQLite files (maps/hash.ts) that commit when closed, so each
// change is made through its own write handle and closed at once; reads
// go through a read handle, which sees every committed change.

import { type Dict, DictError, openMap, splitMapSpec } from "../../maps/mod.ts";
import type { TableConfig } from "../../maps/mod.ts";
import type { CacheStore } from "./cache.ts";

/** Keys are addresses as given: no case folding; a new value replaces the old. */
const flags = { foldFix: false, dupReplace: true, dupWarn: false };

/** Makes the table when it does not exist yet (an empty one, its folder too). */
function ensureTable(spec: string, config?: TableConfig): void {
  try {
    openMap(spec, { flags, config }).close();
    return;
  } catch (err) {
    if (!(err instanceof DictError)) throw err;
  }
  const { name } = splitMapSpec(spec);
  const dir = name.slice(0, name.lastIndexOf("/"));
  if (dir) Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  openMap(spec, { create: true, flags, config }).close();
}

/** A CacheStore over the table `spec` (type:name). */
export function tableStore(spec: string, config?: TableConfig): CacheStore {
  ensureTable(spec, config);
  let reader: Dict | undefined;
  const read = () => reader ??= openMap(spec, { flags, config });
  const write = async (op: (d: Dict) => Promise<unknown>) => {
    const d = openMap(spec, { write: true, flags, config });
    try {
      await op(d);
    } finally {
      await d.close();
    }
  };
  return {
    get: (key) => read().lookup(key),
    put: (key, value) => write((d) => d.update(key, value)),
    del: (key) => write((d) => d.delete(key)),
    entries: () => read().sequence(),
  };
}
