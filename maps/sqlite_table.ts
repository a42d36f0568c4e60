// sqlite: tables, as sqlite_table(5): a parameter file naming dbpath, query
// (with %s %u %d %S %U %D %1-%9 expansions, SQL-quoted), result_format,
// domain and expansion_limit; or, for a name without a leading "/" or ".",
// the same parameters as `name_query` etc. in main.cf.

import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  type Dict,
  DictError,
  foldKey,
  type OpenOptions,
  ReadOnlyDict,
  readTableFile,
  resolvePath,
} from "./dict.ts";
import { logicalLines } from "./source.ts";
import { warn } from "../lib/log.ts";

/** The parameters of one sqlite table. */
export interface SqliteTableParams {
  dbpath: string;
  query: string;
  resultFormat: string;
  domain: string[];
  expansionLimit: number;
}

/** Reads `name = value` lines (main.cf syntax) from a parameter file. */
export function parseParameterFile(text: string, file: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const line of logicalLines(text, file, warn)) {
    const m = /^([^=\s]+)\s*=\s*(.*)$/s.exec(line.text);
    if (!m) {
      warn(`${file}, line ${line.lineno}: missing '=' after attribute name`);
      continue;
    }
    params.set(m[1], m[2].replace(/\s+/g, " ").trim());
  }
  return params;
}

/** Opens a sqlite: table. */
export function openSqliteTable(
  name: string,
  options: OpenOptions = {},
  open?: (spec: string, options: OpenOptions) => Dict,
): Dict {
  let get: (p: string) => string | undefined;
  if (name.startsWith("/") || name.startsWith(".")) {
    const path = resolvePath(name, options.cwd);
    const params = parseParameterFile(readTableFile(path), name);
    get = (p) => params.get(p);
  } else {
    const config = options.config;
    get = (p) => (config?.isSet(`${name}_${p}`) ? config.get(`${name}_${p}`) : undefined);
  }
  const dbpath = get("dbpath");
  if (!dbpath) throw new DictError(`sqlite:${name}: missing dbpath parameter`);
  let query = get("query");
  if (!query) {
    const select = get("select_field"), table = get("table"), where = get("where_field");
    if (!select || !table || !where) {
      throw new DictError(`sqlite:${name}: missing query parameter`);
    }
    query = `SELECT ${select} FROM ${table} WHERE ${where} = '%s' ${
      get("additional_conditions") ?? ""
    }`.trim();
  }
  const params: SqliteTableParams = {
    dbpath,
    query,
    resultFormat: get("result_format") ?? "%s",
    domain: (get("domain") ?? "").split(/[\s,]+/).filter(Boolean),
    expansionLimit: Number(get("expansion_limit") ?? "0") || 0,
  };
  const matcher = domainMatcher(params.domain, options, open);
  return new SqliteTableDict(name, params, options, matcher);
}

/**
 * The `domain` list as a test: domain names, files of names ("/path"), and
 * "type:table" lookups (a domain found in the table matches).
 */
function domainMatcher(
  list: string[],
  options: OpenOptions,
  open?: (spec: string, options: OpenOptions) => Dict,
): ((domain: string) => Promise<boolean>) | undefined {
  if (!list.length) return undefined;
  const names = new Set<string>();
  const tables: Dict[] = [];
  for (const item of list) {
    if (item.startsWith("/")) {
      const text = readTableFile(item).replace(/#.*$/gm, "");
      for (const n of text.split(/[\s,]+/)) if (n) names.add(n.toLowerCase());
    } else if (/^[a-z]+:/.test(item) && open) {
      tables.push(open(item, { ...options, create: false, write: false }));
    } else {
      names.add(item.toLowerCase());
    }
  }
  return async (domain: string) => {
    const d = domain.toLowerCase();
    if (names.has(d)) return true;
    for (const t of tables) if (await t.lookup(d) !== undefined) return true;
    return false;
  };
}

/** The parts of a lookup key that % expansions refer to. */
interface KeyParts {
  whole: string;
  local: string | undefined;
  domain: string | undefined;
}

function splitKey(key: string): KeyParts {
  const at = key.lastIndexOf("@");
  if (at < 0) return { whole: key, local: key, domain: undefined };
  return { whole: key, local: key.slice(0, at), domain: key.slice(at + 1) };
}

/** Thrown inside expansion when a needed part is missing: the query is suppressed. */
class Suppressed extends Error {}

function sqlQuote(text: string): string {
  return text.replaceAll("'", "''");
}

function domainLabel(domain: string | undefined, n: number): string {
  if (!domain) throw new Suppressed();
  const labels = domain.split(".");
  if (n > labels.length) throw new Suppressed();
  return labels[labels.length - n];
}

function part(p: KeyParts, which: string): string {
  switch (which) {
    case "s":
      return p.whole;
    case "u":
      if (p.domain !== undefined && p.local === "") throw new Suppressed();
      return p.local ?? p.whole;
    case "d":
      if (p.domain === undefined) throw new Suppressed();
      return p.domain;
  }
  return domainLabel(p.domain, Number(which));
}

/**
 * Expands a query or result_format template. Lower-case %s %u %d take
 * `value` (the key in a query, a result in result_format); upper-case and
 * digits always take the input key. `quote` SQL-quotes what is inserted.
 */
export function expandTemplate(
  template: string,
  key: KeyParts,
  value: KeyParts,
  quote: boolean,
): string {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== "%") {
      out += c;
      continue;
    }
    const d = template[++i];
    let text: string;
    if (d === "%") text = "%";
    else if ("sud".includes(d)) text = part(value, d);
    else if ("SUD".includes(d)) text = part(key, d.toLowerCase());
    else if (d >= "1" && d <= "9") text = part(key, d);
    else throw new DictError(`invalid % expansion "%${d ?? ""}" in "${template}"`);
    out += quote ? sqlQuote(text) : text;
  }
  return out;
}

class SqliteTableDict extends ReadOnlyDict {
  private db?: DatabaseSync;
  private statements = new Map<string, StatementSync>();

  constructor(
    name: string,
    private params: SqliteTableParams,
    options: OpenOptions,
    private inDomain?: (domain: string) => Promise<boolean>,
  ) {
    super("sqlite", name, options.flags);
  }

  private open(): DatabaseSync {
    if (this.db) return this.db;
    try {
      Deno.statSync(this.params.dbpath);
      this.db = new DatabaseSync(this.params.dbpath, { readOnly: true });
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound
        ? "No such file or directory"
        : (err as Error).message;
      throw new DictError(
        `sqlite:${this.name}: open database ${this.params.dbpath}: ${why}`,
        "retry",
      );
    }
    return this.db;
  }

  async lookup(rawKey: string): Promise<string | undefined> {
    const key = foldKey(rawKey, this.flags);
    const parts = splitKey(key);
    if (this.inDomain) {
      if (!parts.domain || !parts.local) return undefined;
      if (!await this.inDomain(parts.domain)) return undefined;
    }
    let sql: string;
    try {
      sql = expandTemplate(this.params.query, parts, parts, true);
    } catch (err) {
      if (err instanceof Suppressed) return undefined;
      throw err;
    }
    let rows: Record<string, unknown>[];
    try {
      const db = this.open();
      let stmt = this.statements.get(sql);
      if (!stmt) {
        stmt = db.prepare(sql);
        if (this.statements.size > 100) this.statements.clear();
        this.statements.set(sql, stmt);
      }
      rows = stmt.all() as Record<string, unknown>[];
    } catch (err) {
      if (err instanceof DictError) throw err;
      throw new DictError(`sqlite:${this.name}: query failed: ${(err as Error).message}`, "retry");
    }
    return this.formatRows(rows, parts);
  }

  private formatRows(rows: Record<string, unknown>[], key: KeyParts): string | undefined {
    const results: string[] = [];
    for (const row of rows) {
      const first = Object.values(row)[0];
      if (first === null || first === undefined) continue;
      const text = first instanceof Uint8Array ? new TextDecoder().decode(first) : String(first);
      if (text === "") {
        warn(`table "sqlite:${this.name}": empty lookup result for: "${key.whole}" -- ignored`);
        continue;
      }
      try {
        results.push(expandTemplate(this.params.resultFormat, key, splitKey(text), false));
      } catch (err) {
        if (!(err instanceof Suppressed)) throw err;
      }
      const limit = this.params.expansionLimit;
      if (limit > 0 && results.length > limit) {
        warn(`dict_sqlite_lookup: ${this.name}: Expansion limit exceeded for key '${key.whole}'`);
        throw new DictError("Expansion limit exceeded", "retry");
      }
    }
    return results.length ? results.join(",") : undefined;
  }

  override close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    return Promise.resolve();
  }
}
