// Tables that live in memory: texthash, inline, static, fail, environ and
// internal (see postconf(5) and DATABASE_README).

import {
  defaultFlags,
  type Dict,
  DictError,
  type DictFlags,
  foldKey,
  type OpenOptions,
  ReadOnlyDict,
  readTableFile,
  resolvePath,
  type UpdateResult,
} from "./dict.ts";
import { splitBraced } from "./braces.ts";
import { parseMapSource } from "./source.ts";
import { warn } from "../lib/log.ts";

/** A table held in a Map: the base of texthash, inline and internal. */
export class MemoryDict implements Dict {
  readonly flags: DictFlags;
  readonly entries = new Map<string, string>();
  constructor(readonly type: string, readonly name: string, flags: Partial<DictFlags> = {}) {
    this.flags = defaultFlags(flags);
  }
  private fold(key: string): string {
    return foldKey(key, this.flags);
  }
  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.entries.get(this.fold(key)));
  }
  update(key: string, value: string): Promise<UpdateResult> {
    const k = this.fold(key);
    if (!this.entries.has(k)) {
      this.entries.set(k, value);
      return Promise.resolve("stored");
    }
    if (this.flags.dupReplace) {
      this.entries.set(k, value);
      return Promise.resolve("replaced");
    }
    if (this.flags.dupWarn && !this.flags.dupIgnore) warn(`${this.name}: duplicate entry: "${k}"`);
    return Promise.resolve("duplicate");
  }
  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.entries.delete(this.fold(key)));
  }
  async *sequence(): AsyncIterable<[string, string]> {
    yield* this.entries;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A read-only MemoryDict (texthash, inline). */
class FixedDict extends MemoryDict {
  override update(): Promise<UpdateResult> {
    return Promise.reject(
      new DictError(
        `table ${this.type}:${this.name}: update operation is not supported`,
        "unsupported",
      ),
    );
  }
  override delete(): Promise<boolean> {
    return Promise.reject(
      new DictError(
        `table ${this.type}:${this.name}: delete operation is not supported`,
        "unsupported",
      ),
    );
  }
}

/** texthash:FILE — a postmap source file read into memory when opened. */
export function openTexthash(name: string, options: OpenOptions = {}): Dict {
  const dict = new FixedDict("texthash", name, options.flags);
  const path = resolvePath(name, options.cwd);
  const text = readTableFile(path);
  for (const e of parseMapSource(text, name, warn, " -- ignoring this line")) {
    const k = foldKey(e.key, dict.flags);
    if (dict.entries.has(k)) {
      if (dict.flags.dupReplace) dict.entries.set(k, e.value);
      else if (!dict.flags.dupIgnore) {
        warn(`${name}, line ${e.lineno}: duplicate entry: "${e.key}"`);
      }
      continue;
    }
    dict.entries.set(k, e.value);
  }
  return dict;
}

/** inline:{ key=value, { key = value with spaces }, ... } */
export function openInline(name: string, options: OpenOptions = {}): Dict {
  const spec = `inline:${name}`;
  const need = `; need "inline:{name=value...}"`;
  let items: string[];
  try {
    items = splitBraced(name, spec);
  } catch {
    throw new DictError(`bad syntax: "${spec}"${need}`);
  }
  if (items.length === 0) throw new DictError(`bad syntax: "${spec}"${need}`);
  const dict = new FixedDict("inline", name, options.flags);
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq < 0) throw new DictError(`missing '=' after attribute name: "${spec}"${need}`);
    const key = item.slice(0, eq).trim();
    const k = foldKey(key, dict.flags);
    if (!dict.entries.has(k)) dict.entries.set(k, item.slice(eq + 1).trim());
  }
  return dict;
}

/** static:VALUE (or static:{ value with spaces }) — every key finds VALUE. */
export function openStatic(name: string, options: OpenOptions = {}): Dict {
  const value = name.startsWith("{") && name.endsWith("}") ? name.slice(1, -1).trim() : name;
  return new (class extends ReadOnlyDict {
    lookup(): Promise<string | undefined> {
      return Promise.resolve(value);
    }
  })("static", name, options.flags);
}

/** fail:NAME — every lookup fails with a temporary error. */
export function openFail(name: string, options: OpenOptions = {}): Dict {
  return new (class extends ReadOnlyDict {
    lookup(): Promise<string | undefined> {
      return Promise.reject(new DictError("Application error", "retry"));
    }
  })("fail", name, options.flags);
}

/** environ:NAME — the process environment. */
export function openEnviron(name: string, options: OpenOptions = {}): Dict {
  return new (class extends ReadOnlyDict {
    lookup(key: string): Promise<string | undefined> {
      return Promise.resolve(Deno.env.get(key));
    }
    override async *sequence(): AsyncIterable<[string, string]> {
      yield* Object.entries(Deno.env.toObject());
    }
  })("environ", name, { ...options.flags, foldFix: false });
}

const internalTables = new Map<string, MemoryDict>();

/** internal:NAME — an in-process table, shared by every open of NAME. */
export function openInternal(name: string, options: OpenOptions = {}): Dict {
  let dict = internalTables.get(name);
  if (!dict || options.create) {
    dict = new MemoryDict("internal", name, options.flags);
    internalTables.set(name, dict);
  }
  return dict;
}
