// The registry of table types: which types exist, what each can do, and
// openMap("type:name"), which opens one. `postconf -m` lists mapTypeNames().

import { type Dict, DictError, type OpenOptions, resolvePath } from "./dict.ts";
import { openHash } from "./hash.ts";
import { openCdb } from "./cdb.ts";
import {
  openEnviron,
  openFail,
  openInline,
  openInternal,
  openStatic,
  openTexthash,
} from "./memory.ts";
import { openPipemap, openRandmap, openUnionmap } from "./composite.ts";
import { openRegexp } from "./regexp.ts";
import { openCidr } from "./cidr.ts";
import { openSqliteTable } from "./sqlite_table.ts";
import { openProxy } from "./proxy.ts";
import { loadConfig } from "../lib/config/mod.ts";

/** What a table type is and can do. */
export interface MapType {
  /** The type name in `type:name`. */
  name: string;
  /** One line for people (postconf -m with -v, docs). */
  description: string;
  /** postmap/postalias can build it from a source file. */
  creatable: boolean;
  /** It takes updates and deletions (postmap -i, -d). */
  updatable: boolean;
  /** It can list its entries (postmap -s). */
  sequenceable: boolean;
  /** Its table name is a file path (resolved against the caller's directory). */
  fileBased: boolean;
  open(name: string, options: OpenOptions): Dict;
}

const types: MapType[] = [
  {
    name: "btree",
    description: "sorted indexed file name.db (kept in SQLite, Posthorn's own format)",
    creatable: true,
    updatable: true,
    sequenceable: true,
    fileBased: true,
    open: (name, o) => openHash("btree", name, o),
  },
  {
    name: "cdb",
    description: "constant database name.cdb (tinycdb format)",
    creatable: true,
    updatable: false,
    sequenceable: true,
    fileBased: true,
    open: (name, o) => openCdb(name, o),
  },
  {
    name: "cidr",
    description: "network/prefix patterns (cidr_table(5))",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: true,
    open: (name, o) => openCidr(name, o),
  },
  {
    name: "environ",
    description: "the process environment",
    creatable: false,
    updatable: false,
    sequenceable: true,
    fileBased: false,
    open: (name, o) => openEnviron(name, o),
  },
  {
    name: "fail",
    description: "a table whose every lookup fails (for tests)",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openFail(name, o),
  },
  {
    name: "hash",
    description: "indexed file name.db (kept in SQLite, Posthorn's own format)",
    creatable: true,
    updatable: true,
    sequenceable: true,
    fileBased: true,
    open: (name, o) => openHash("hash", name, o),
  },
  {
    name: "inline",
    description: "inline:{ key=value, ... } in the configuration",
    creatable: false,
    updatable: false,
    sequenceable: true,
    fileBased: false,
    open: (name, o) => openInline(name, o),
  },
  {
    name: "internal",
    description: "an in-process table",
    creatable: true,
    updatable: true,
    sequenceable: true,
    fileBased: false,
    open: (name, o) => openInternal(name, o),
  },
  {
    name: "lmdb",
    description: "accepted as the same SQLite-backed kind as hash (file name.db)",
    creatable: true,
    updatable: true,
    sequenceable: true,
    fileBased: true,
    open: (name, o) => openHash("lmdb", name, o),
  },
  {
    name: "pcre",
    description: "PCRE patterns (pcre_table(5)), run as JavaScript regular expressions",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: true,
    open: (name, o) => openRegexp("pcre", name, o),
  },
  {
    name: "pipemap",
    description: "pipemap:{t1, t2, ...}: each result is the next table's key",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openPipemap(name, o, openMap),
  },
  {
    name: "proxy",
    description: "proxy:type:name, served by the proxymap service (proxywrite for updates)",
    creatable: false,
    updatable: true,
    sequenceable: true,
    fileBased: false,
    open: (name, o) => openProxy(name, o, () => loadConfig()),
  },
  {
    name: "randmap",
    description: "randmap:{r1, r2, ...}: one result at random",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openRandmap(name, o),
  },
  {
    name: "regexp",
    description: "POSIX patterns (regexp_table(5)), run as JavaScript regular expressions",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: true,
    open: (name, o) => openRegexp("regexp", name, o),
  },
  {
    name: "sqlite",
    description: "SQLite queries (sqlite_table(5))",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openSqliteTable(name, o, openMap),
  },
  {
    name: "static",
    description: "static:value: every key finds value",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openStatic(name, o),
  },
  {
    name: "texthash",
    description: "a postmap source file read into memory",
    creatable: false,
    updatable: false,
    sequenceable: true,
    fileBased: true,
    open: (name, o) => openTexthash(name, o),
  },
  {
    name: "unionmap",
    description: "unionmap:{t1, t2, ...}: every table's result, comma-joined",
    creatable: false,
    updatable: false,
    sequenceable: false,
    fileBased: false,
    open: (name, o) => openUnionmap(name, o, openMap),
  },
];

const readOnlyAccess = new Set([
  "cidr",
  "inline",
  "pcre",
  "pipemap",
  "randmap",
  "regexp",
  "sqlite",
  "texthash",
  "unionmap",
]);

const byName = new Map(types.map((t) => [t.name, t]));

/** The type names, sorted, one per line of `postconf -m`. */
export function mapTypeNames(): string[] {
  return types.map((t) => t.name).sort();
}

/** The description of every type (name → what it is and can do). */
export function mapTypes(): readonly MapType[] {
  return types;
}

/** The type named `name`, or undefined. */
export function findMapType(name: string): MapType | undefined {
  return byName.get(name);
}

/** Splits `type:name`; DictError when there is no type. */
export function splitMapSpec(spec: string): { type: string; name: string } {
  const colon = spec.indexOf(":");
  if (colon <= 0) {
    throw new DictError(`open dictionary: expecting "type:name" form instead of "${spec}"`);
  }
  return { type: spec.slice(0, colon), name: spec.slice(colon + 1) };
}

/** The type named `type`, or a DictError with Postfix's wording. */
export function requireMapType(type: string): MapType {
  const t = byName.get(type);
  if (!t) throw new DictError(`unsupported dictionary type: ${type}`);
  return t;
}

/** Opens the table `type:name`. */
export function openMap(spec: string, options: OpenOptions = {}): Dict {
  const { type, name } = splitMapSpec(spec);
  const t = requireMapType(type);
  // Pattern and configuration-text tables cannot be opened for writing at
  // all; the other read-only types open and refuse each update instead.
  if ((options.create || options.write) && readOnlyAccess.has(type)) {
    throw new DictError(`${type}:${name} map requires O_RDONLY access mode`);
  }
  const path = t.fileBased ? resolvePath(name, options.cwd) : name;
  return t.open(path, options);
}
