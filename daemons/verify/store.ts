// The verify cache in a lookup table (address_verify_map): hash and btree
// tables are SQLite files (maps/hash.ts) whose write handle commits when
// closed. Changes go through one write handle that is closed (committed)
// shortly after the last change, so a burst of updates costs one commit
// and nobody else is locked out for long; while it is open, reads use it
// (it sees its own changes), otherwise a read handle.

import { type Dict, DictError, openMap, splitMapSpec } from "../../maps/mod.ts";
import type { TableConfig } from "../../maps/mod.ts";
import type { CacheStore } from "./cache.ts";
import { warn } from "../../lib/log.ts";

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

/** How long changes may wait before they are committed, in milliseconds. */
const commitDelay = 200;

/** A CacheStore over the table `spec` (type:name). */
export function tableStore(spec: string, config?: TableConfig): CacheStore {
  ensureTable(spec, config);
  let reader: Dict | undefined;
  let writer: Dict | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const commit = async () => {
    timer = undefined;
    const w = writer;
    writer = undefined;
    await w?.close();
  };
  const read = () => writer ?? (reader ??= openMap(spec, { flags, config }));
  const write = async (op: (d: Dict) => Promise<unknown>) => {
    writer ??= openMap(spec, { write: true, flags, config });
    await op(writer);
    if (!timer) {
      timer = setTimeout(() => {
        commit().catch((err) => warn(`${spec}: commit: ${(err as Error).message}`));
      }, commitDelay);
      Deno.unrefTimer(timer);
    }
  };
  return {
    get: (key) => read().lookup(key),
    put: (key, value) => write((d) => d.update(key, value)),
    del: (key) => write((d) => d.delete(key)),
    entries: () => read().sequence(),
    async flush() {
      clearTimeout(timer);
      await commit();
    },
  };
}
