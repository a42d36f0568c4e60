// hash:, btree: (and lmdb:, the same kind here) tables: indexed files named
// `name.db`, kept in SQLite through node:sqlite. This is Posthorn's own file
// format; the reference's Berkeley DB files are not readable by it.
//
// A rebuild writes a temporary file and renames it over the old one, so a
// reader sees the old table or the new one, never half. Incremental updates
// (postmap -i, -d) run in SQLite transactions, which serialise concurrent
// writers and keep readers consistent.

import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  defaultFlags,
  describeOsError,
  type Dict,
  DictError,
  type DictFlags,
  foldKey,
  type OpenOptions,
  type UpdateResult,
} from "./dict.ts";
import { warn } from "../lib/log.ts";

/** Rows per INSERT while building a new table. */
const BATCH_ROWS = 200;

/** Keys per query in lookupMany(). */
const BATCH = 500;

const SCHEMA = "CREATE TABLE IF NOT EXISTS map (k TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL) " +
  "WITHOUT ROWID; CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)";

/** The file a hash or btree table `name` lives in. */
export function hashFileName(name: string): string {
  return `${name}.db`;
}

/** Opens (or, with `create`, starts building) a SQLite-backed indexed table. */
export function openHash(type: string, name: string, options: OpenOptions = {}): Dict {
  return new HashDict(type, name, options);
}

class HashDict implements Dict {
  readonly flags: DictFlags;
  private db: DatabaseSync;
  private readonly path: string;
  private readonly tempPath?: string;
  private getStmt: StatementSync;
  private putStmt?: StatementSync;
  private inTransaction = false;
  private inStmts = new Map<number, StatementSync>();
  private batchStmts = new Map<string, StatementSync>();
  private pending: string[] = [];
  private closed = false;

  constructor(readonly type: string, readonly name: string, private options: OpenOptions) {
    this.flags = defaultFlags(options.flags);
    this.path = hashFileName(name);
    if (options.create) {
      this.tempPath = `${this.path}.${Deno.pid}.tmp`;
      try {
        Deno.removeSync(this.tempPath);
      } catch { /* none left over */ }
    }
    this.db = this.openDatabase(this.tempPath ?? this.path);
    this.getStmt = this.db.prepare("SELECT v FROM map WHERE k = ?");
    returnArrays(this.getStmt);
    this.narrowNullFlags();
  }

  private openDatabase(file: string): DatabaseSync {
    const { create, write } = this.options;
    if (!create) {
      try {
        Deno.statSync(file);
      } catch (err) {
        throw new DictError(`open database ${file}: ${describeOsError(err)}`);
      }
    }
    try {
      const db = new DatabaseSync(file, { readOnly: !create && !write, timeout: 30000 });
      if (create) {
        db.exec(
          "PRAGMA page_size=16384; PRAGMA cache_size=-262144; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF",
        );
        db.exec(SCHEMA);
        db.prepare("INSERT OR REPLACE INTO meta VALUES ('nul', ?)").run(this.nulMode());
      } else if (write) {
        db.exec(`PRAGMA synchronous=${this.flags.sync ? "FULL" : "NORMAL"}`);
      }
      if (!create) {
        db.prepare("SELECT 1 FROM map LIMIT 1").get();
        // Reads through a memory map skip SQLite's page copies.
        db.exec("PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536");
      }
      return db;
    } catch (err) {
      if (err instanceof DictError) throw err;
      const why = (err as Error).message;
      // A Berkeley DB file from another mail system lands here: say what to do.
      const hint = /not a database/.test(why)
        ? " (Posthorn keeps hash and btree tables in SQLite; rebuild it with postmap)"
        : "";
      throw new DictError(`open database ${file}: ${why}${hint}`);
    }
  }

  private nulMode(): string {
    return this.flags.try1Null && !this.flags.try0Null ? "1" : "0";
  }

  // A table built without null bytes cannot hold keys with one, so one probe
  // per lookup is enough (Postfix narrows the same flags after a first hit).
  private narrowNullFlags(): void {
    if (!this.flags.try0Null || !this.flags.try1Null) return;
    const row = this.db.prepare("SELECT value FROM meta WHERE name = 'nul'").get() as
      | { value: string }
      | undefined;
    if (row?.value === "0") this.flags.try1Null = false;
    else if (row?.value === "1") this.flags.try0Null = false;
  }

  private fold(key: string): string {
    return foldKey(key, this.flags);
  }

  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.lookupSync(key));
  }

  /** The synchronous lookup behind lookup() (the bench and postmap -q use it too). */
  lookupSync(key: string): string | undefined {
    this.flush();
    key = this.fold(key);
    if (this.flags.try1Null) {
      const row = this.getStmt.get(key + "\0") as unknown as [string] | undefined;
      if (row) {
        this.flags.try0Null = false;
        return stripNul(row[0]);
      }
    }
    if (this.flags.try0Null) {
      const row = this.getStmt.get(key) as unknown as [string] | undefined;
      if (row) {
        this.flags.try1Null = false;
        return row[0];
      }
    }
    return undefined;
  }

  lookupMany(keys: string[]): Promise<(string | undefined)[]> {
    this.flush();
    const folded = keys.map((k) => this.fold(k));
    const found = new Map<string, string>();
    const probe = (list: string[]) => {
      for (let i = 0; i < list.length; i += BATCH) {
        const part = list.slice(i, i + BATCH);
        for (const [k, v] of this.selectIn(part)) found.set(k, v);
      }
    };
    if (this.flags.try1Null) probe(folded.map((k) => k + "\0"));
    if (this.flags.try0Null) probe(folded.filter((k) => !found.has(k + "\0")));
    return Promise.resolve(folded.map((k) => {
      const v = found.get(k + "\0");
      if (v !== undefined) return stripNul(v);
      return found.get(k);
    }));
  }

  private selectIn(keys: string[]): [string, string][] {
    let stmt = this.inStmts.get(keys.length);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT k, v FROM map WHERE k IN (${new Array(keys.length).fill("?").join(",")})`,
      );
      returnArrays(stmt);
      this.inStmts.set(keys.length, stmt);
    }
    return stmt.all(...keys) as unknown as [string, string][];
  }

  private begin(): void {
    if (this.inTransaction) return;
    this.db.exec(this.options.create ? "BEGIN" : "BEGIN IMMEDIATE");
    this.inTransaction = true;
  }

  update(key: string, value: string): Promise<UpdateResult> {
    this.begin();
    let k = this.fold(key);
    if (this.flags.try1Null && !this.flags.try0Null) {
      k += "\0";
      value += "\0";
    }
    // A new table is filled in batches of rows (one SQLite call per batch).
    if (this.options.create) {
      this.pending.push(k, value);
      if (this.pending.length >= 2 * BATCH_ROWS) this.flush();
      return Promise.resolve("stored");
    }
    return Promise.resolve(this.putOne(k, value));
  }

  private putOne(k: string, value: string): UpdateResult {
    this.putStmt ??= this.db.prepare(
      "INSERT INTO map (k, v) VALUES (?, ?) ON CONFLICT(k) DO NOTHING",
    );
    const done = this.putStmt.run(k, value);
    if (Number(done.changes) > 0) return "stored";
    if (this.flags.dupReplace) {
      this.db.prepare("UPDATE map SET v = ? WHERE k = ?").run(value, k);
      return "replaced";
    }
    if (!this.flags.dupIgnore && this.flags.dupWarn) {
      warn(`${this.path}: duplicate entry: "${stripNul(k)}"`);
    }
    return "duplicate";
  }

  /**
   * Writes the rows collected while building. A batch with a duplicate key
   * is undone and replayed row by row, so each duplicate gets its warning;
   * callers flush before their own warnings to keep the reference's order.
   */
  flush(): void {
    const rows = this.pending;
    if (!rows.length) return;
    this.pending = [];
    const n = rows.length / 2;
    const verb = this.flags.dupReplace ? "INSERT OR REPLACE" : "INSERT OR IGNORE";
    const quiet = this.flags.dupReplace || this.flags.dupIgnore || !this.flags.dupWarn;
    if (!quiet) this.db.exec("SAVEPOINT batch");
    const done = this.batchStatement(verb, n).run(...rows);
    if (quiet) return;
    if (Number(done.changes) === n) {
      this.db.exec("RELEASE batch");
      return;
    }
    this.db.exec("ROLLBACK TO batch; RELEASE batch");
    for (let i = 0; i < rows.length; i += 2) this.putOne(rows[i], rows[i + 1]);
  }

  private batchStatement(verb: string, n: number): StatementSync {
    const name = `${verb}/${n}`;
    let stmt = this.batchStmts.get(name);
    if (!stmt) {
      stmt = this.db.prepare(
        `${verb} INTO map (k, v) VALUES ${new Array(n).fill("(?,?)").join(",")}`,
      );
      this.batchStmts.set(name, stmt);
    }
    return stmt;
  }

  delete(key: string): Promise<boolean> {
    this.flush();
    this.begin();
    const k = this.fold(key);
    const stmt = this.db.prepare("DELETE FROM map WHERE k = ?");
    let gone = false;
    if (this.flags.try1Null) gone = Number(stmt.run(k + "\0").changes) > 0;
    if (!gone && this.flags.try0Null) gone = Number(stmt.run(k).changes) > 0;
    return Promise.resolve(gone);
  }

  async *sequence(): AsyncIterable<[string, string]> {
    this.flush();
    const rows = this.db.prepare("SELECT k, v FROM map").iterate() as Iterable<
      { k: string; v: string }
    >;
    for (const row of rows) yield [stripNul(row.k), stripNul(row.v)];
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.flush();
    if (this.inTransaction) this.db.exec("COMMIT");
    this.db.close();
    if (this.tempPath) this.commitFile(this.tempPath);
    return Promise.resolve();
  }

  /** Abandons a rebuild: the old table stays as it was. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    if (this.tempPath) Deno.removeSync(this.tempPath);
  }

  private commitFile(temp: string): void {
    try {
      if (this.options.mode !== undefined) Deno.chmodSync(temp, this.options.mode);
      if (this.flags.sync) fsyncPath(temp);
      Deno.renameSync(temp, this.path);
    } catch (err) {
      throw new DictError(`rename ${temp} to ${this.path}: ${describeOsError(err)}`);
    }
  }
}

function stripNul(s: string): string {
  return s.endsWith("\0") ? s.slice(0, -1) : s;
}

function fsyncPath(path: string): void {
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    f.syncSync();
  } finally {
    f.close();
  }
}

/** Rows as arrays are cheaper than objects; the method is newer than the type definitions. */
function returnArrays(stmt: StatementSync): void {
  (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
}
