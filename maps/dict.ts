// The lookup-table interface every map type implements, as Postfix's dict(3):
// open, lookup, update, delete, sequence, close, with Postfix's table flags.
//
// Lookups are asynchronous because network tables (proxy, and later pgsql,
// ldap, socketmap) answer over a socket; file tables answer at once.

/** Postfix's dictionary flags (DICT_FLAG_*), as booleans. */
export interface DictFlags {
  /** Fold fixed-string keys to lower case on lookup and update (FOLD_FIX). */
  foldFix: boolean;
  /** Fold keys for multi-case (pattern) tables (FOLD_MUL); regexp tables ignore it. */
  foldMul: boolean;
  /** Take an exclusive lock while updating (LOCK). */
  lock: boolean;
  /** Flush each update to disk (SYNC_UPDATE). */
  sync: boolean;
  /** Try the key without a terminating null byte (TRY0NULL). */
  try0Null: boolean;
  /** Try the key with a terminating null byte (TRY1NULL). */
  try1Null: boolean;
  /** Warn about and skip a duplicate key on update (DUP_WARN, the default). */
  dupWarn: boolean;
  /** Skip a duplicate key silently (DUP_IGNORE, postmap -w). */
  dupIgnore: boolean;
  /** Replace a duplicate key (DUP_REPLACE, postmap -r). */
  dupReplace: boolean;
  /** Keys and values must be valid UTF-8 (UTF8_REQUEST, smtputf8_enable). */
  utf8: boolean;
}

/** The flags a table gets when the caller names none: Postfix's defaults for reading. */
export function defaultFlags(change: Partial<DictFlags> = {}): DictFlags {
  return {
    foldFix: true,
    foldMul: false,
    lock: false,
    sync: false,
    try0Null: true,
    try1Null: true,
    dupWarn: true,
    dupIgnore: false,
    dupReplace: false,
    utf8: false,
    ...change,
  };
}

// deno-lint-ignore no-control-regex
const nonAscii = /[^\x00-\x7f]/;

/**
 * Folds a key as the table flags say: nothing without foldFix; full Unicode
 * lower case with utf8 (smtputf8_enable); otherwise ASCII letters only, as
 * Postfix does when SMTPUTF8 is off.
 */
export function foldKey(key: string, flags: DictFlags): string {
  if (!flags.foldFix) return key;
  if (flags.utf8 || !nonAscii.test(key)) return key.toLowerCase();
  return key.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** How a table is opened. */
export interface OpenOptions {
  /** Open for update (postmap -i, -d). */
  write?: boolean;
  /** Create a new, empty table in place of any old one (postmap FILE). */
  create?: boolean;
  /** Table flags; defaults from defaultFlags(). */
  flags?: Partial<DictFlags>;
  /** Where relative table names are resolved (the process's directory otherwise). */
  cwd?: string;
  /** Whether the file may be created with permissions of its own (postmap -p). */
  mode?: number;
  /** main.cf, for tables that read parameters from it (sqlite:name without a path). */
  config?: TableConfig;
}

/** The part of lib/config's Config that tables use. */
export interface TableConfig {
  get(name: string): string;
  isSet(name: string): boolean;
}

/** Why a lookup or an open failed: a configuration error or a temporary one. */
export type DictErrorKind = "config" | "retry" | "unsupported";

/** A table error: Postfix's DICT_ERR_CONFIG / DICT_ERR_RETRY, or an operation the type lacks. */
export class DictError extends Error {
  constructor(message: string, readonly kind: DictErrorKind = "config") {
    super(message);
    this.name = "DictError";
  }
}

/** Result of an update: stored, or a duplicate that was kept or replaced. */
export type UpdateResult = "stored" | "duplicate" | "replaced";

/** An open lookup table. */
export interface Dict {
  /** The type name (`hash`, `cidr`, ...). */
  readonly type: string;
  /** The table name as given after `type:`. */
  readonly name: string;
  /** The flags in force. */
  readonly flags: DictFlags;
  /** The value for `key`, or undefined when there is none; throws DictError on failure. */
  lookup(key: string): Promise<string | undefined>;
  /** Looks up many keys at once (indexed files answer a batch in one query). */
  lookupMany?(keys: string[]): Promise<(string | undefined)[]>;
  /**
   * Stores `key` → `value`, handling a duplicate as the dup flags say. A
   * table being built may store in batches: it then answers "stored" at once
   * and reports a duplicate through its warning when the batch is written.
   */
  update(key: string, value: string): Promise<UpdateResult>;
  /** Removes `key`; false when it was not there. */
  delete(key: string): Promise<boolean>;
  /** Every entry, in the table's own order. */
  sequence(): AsyncIterable<[string, string]>;
  /** Commits pending work and releases the table. */
  close(): Promise<void>;
  /** Writes what a building table holds back (call before logging a warning of your own). */
  flush?(): void;
  /** Abandons a rebuild in progress, leaving the old file in place (file tables). */
  abort?(): void;
}

/** Postfix's wording for an operation a table type lacks. */
export function unsupported(type: string, name: string, op: string): DictError {
  return new DictError(`table ${type}:${name}: ${op} operation is not supported`, "unsupported");
}

/**
 * A base for read-only tables: update, delete and sequence refuse with
 * Postfix's error; subclasses supply lookup (and sequence where they can).
 */
export abstract class ReadOnlyDict implements Dict {
  readonly flags: DictFlags;
  constructor(readonly type: string, readonly name: string, flags: Partial<DictFlags> = {}) {
    this.flags = defaultFlags(flags);
  }
  abstract lookup(key: string): Promise<string | undefined>;
  update(_key: string, _value: string): Promise<UpdateResult> {
    return Promise.reject(unsupported(this.type, this.name, "update"));
  }
  delete(_key: string): Promise<boolean> {
    return Promise.reject(unsupported(this.type, this.name, "delete"));
  }
  // deno-lint-ignore require-yield
  async *sequence(): AsyncIterable<[string, string]> {
    throw unsupported(this.type, this.name, "sequence");
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Postfix's text for an operating-system error ("No such file or directory"). */
export function describeOsError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.AlreadyExists) return "File exists";
  if (err instanceof Deno.errors.IsADirectory) return "Is a directory";
  if (err instanceof Deno.errors.NotADirectory) return "Not a directory";
  return err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : String(err);
}

/** Reads a table's source file as text; DictError naming the file when it cannot. */
export function readTableFile(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    throw new DictError(`open ${path}: ${describeOsError(err)}`);
  }
}

/** Resolves a table file name against `cwd` when it is relative. */
export function resolvePath(name: string, cwd?: string): string {
  if (!cwd || name.startsWith("/")) return name;
  return `${cwd.replace(/\/$/, "")}/${name}`;
}
