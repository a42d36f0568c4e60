// Noticing that a lookup table was rebuilt (postmap, postalias, an edited
// regexp file), as Postfix's dict_changed_name does for trivial-rewrite:
// the file behind each file-based table is stat'ed at most once a second,
// and a change is reported with the table's name so the service can pick
// up the new contents.

import { type Dict, findMapType, splitMapSpec } from "../../maps/mod.ts";

/** Seconds between two looks at the files. */
const CHECK_INTERVAL_MS = 1000;

/** The file a table reads, for the types whose name is a file. */
function fileOf(spec: string, configDir: string): string | undefined {
  const { type, name } = splitMapSpec(spec);
  const kind = findMapType(type);
  if (!kind?.fileBased || type === "sqlite") return undefined;
  const path = name.startsWith("/") ? name : `${configDir}/${name}`;
  if (type === "hash" || type === "btree" || type === "lmdb") return `${path}.db`;
  if (type === "cdb") return `${path}.cdb`;
  return path;
}

function mtimeOf(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return -1;
  }
}

/** The tables opened by one configuration, and the times of their files. */
export class TableWatch {
  private files = new Map<string, { spec: string; mtime: number }>();
  private lastCheck = Date.now();
  /** Every table opened, to close when the configuration is replaced. */
  readonly tables: Dict[] = [];

  constructor(private readonly configDir: string) {}

  /** Remembers the table and the file behind it (type:name) as it is now. */
  add(spec: string, table: Dict): Dict {
    this.tables.push(table);
    const path = fileOf(spec, this.configDir);
    if (path && !this.files.has(path)) this.files.set(path, { spec, mtime: mtimeOf(path) });
    return table;
  }

  /** Remembers a list file (/file/name in a domain list). */
  addFile(path: string): void {
    if (!this.files.has(path)) this.files.set(path, { spec: path, mtime: mtimeOf(path) });
  }

  /** Takes the files as they are now (after a failed reload: no new complaint each second). */
  accept(): void {
    for (const [path, entry] of this.files) entry.mtime = mtimeOf(path);
  }

  /** Closes every table (after the service moved to a new configuration). */
  async close(): Promise<void> {
    for (const t of this.tables) await t.close().catch(() => {});
  }

  /** The first table whose file changed since it was opened, looking at most once a second. */
  changed(now = Date.now()): string | undefined {
    if (now - this.lastCheck < CHECK_INTERVAL_MS) return undefined;
    this.lastCheck = now;
    for (const [path, { spec, mtime }] of this.files) {
      if (mtimeOf(path) !== mtime) return spec;
    }
    return undefined;
  }
}
