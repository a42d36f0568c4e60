// Tables made of other tables or of a list: unionmap:{t1, t2} (every
// table's result, joined with commas), pipemap:{t1, t2} (each result is the
// next table's key) and randmap:{r1, r2} (one of the results at random).

import { type Dict, DictError, type OpenOptions, ReadOnlyDict } from "./dict.ts";
import { splitBraced } from "./braces.ts";

/** Opens a component table (the registry's openMap, passed in to avoid a cycle). */
export type Opener = (spec: string, options: OpenOptions) => Dict;

function components(type: string, name: string): string[] {
  const spec = `${type}:${name}`;
  let items: string[];
  try {
    items = splitBraced(name, spec);
  } catch {
    throw new DictError(`bad syntax: "${spec}"; need "${type}:{type:name...}"`);
  }
  if (!items.length) throw new DictError(`bad syntax: "${spec}"; need "${type}:{type:name...}"`);
  return items;
}

class ListDict extends ReadOnlyDict {
  constructor(
    type: string,
    name: string,
    private tables: Dict[],
    private combine: "union" | "pipe",
    options: OpenOptions,
  ) {
    super(type, name, { ...options.flags, foldFix: false });
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.combine === "pipe") {
      let current: string | undefined = key;
      for (const t of this.tables) {
        current = await t.lookup(current);
        if (current === undefined) return undefined;
      }
      return current;
    }
    const found: string[] = [];
    for (const t of this.tables) {
      const v = await t.lookup(key);
      if (v !== undefined) found.push(v);
    }
    return found.length ? found.join(",") : undefined;
  }

  override async close(): Promise<void> {
    for (const t of this.tables) await t.close();
  }
}

/** unionmap:{type:name, ...} */
export function openUnionmap(name: string, options: OpenOptions, open: Opener): Dict {
  const tables = components("unionmap", name).map((spec) =>
    open(spec, { ...options, write: false, create: false })
  );
  return new ListDict("unionmap", name, tables, "union", options);
}

/** pipemap:{type:name, ...} */
export function openPipemap(name: string, options: OpenOptions, open: Opener): Dict {
  const specs = components("pipemap", name);
  if (specs.length < 2) {
    throw new DictError(`bad syntax: "pipemap:${name}"; need at least two tables`);
  }
  const tables = specs.map((spec) => open(spec, { ...options, write: false, create: false }));
  return new ListDict("pipemap", name, tables, "pipe", options);
}

/** randmap:{result, ...} */
export function openRandmap(name: string, options: OpenOptions = {}): Dict {
  const spec = `randmap:${name}`;
  let items: string[];
  try {
    items = splitBraced(name, spec);
  } catch {
    throw new DictError(`bad syntax: "${spec}"; need "randmap:{value...}"`);
  }
  if (!items.length) throw new DictError(`bad syntax: "${spec}"; need "randmap:{value...}"`);
  return new (class extends ReadOnlyDict {
    lookup(): Promise<string | undefined> {
      return Promise.resolve(items[Math.floor(Math.random() * items.length)]);
    }
  })("randmap", name, options.flags);
}
