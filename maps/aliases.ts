// Alias databases, as aliases(5) and postalias(1): `name: value, value`
// lines with continuation lines, quoted names, :include:, |command and /file
// values; each value list is stored in the canonical form Postfix writes,
// and the `@` sentinel key (with YP_LAST_MODIFIED and YP_MASTER_NAME for
// hash and btree tables) marks a complete database.

import { type Dict, DictError, type OpenOptions, readTableFile, type TableConfig } from "./dict.ts";
import { logicalLines, type SourceWarning } from "./source.ts";
import { findMapType, openMap, splitMapSpec } from "./registry.ts";
import { warn } from "../lib/log.ts";

const SPECIALS = '()<>@,;:\\".[]';

/** One alias entry from a source line. */
export interface AliasEntry {
  name: string;
  value: string;
  lineno: number;
}

/** Reads the name before the colon: an atom, or a quoted string without its quotes. */
function aliasName(text: string): { name: string; rest: string } | undefined {
  let i = 0;
  let name = "";
  while (i < text.length && text[i] !== ":") {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        name += text[i++];
      }
      if (i >= text.length) return undefined;
      i++;
    } else if (c === "\\" && i + 1 < text.length) {
      name += text[i + 1];
      i += 2;
    } else if (c === " " || c === "\t") {
      i++;
    } else {
      name += c;
      i++;
    }
  }
  if (i >= text.length) return undefined;
  return { name, rest: text.slice(i + 1) };
}

/** Splits an address list at the commas outside quotes, comments and <...>. */
function splitList(text: string): string[] {
  const items: string[] = [];
  let cur = "";
  let depth = 0;
  let angle = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && i + 1 < text.length) {
      cur += c + text[++i];
    } else if (c === '"') {
      const end = closingQuote(text, i);
      cur += text.slice(i, end + 1);
      i = end;
    } else {
      if (c === "(") depth++;
      else if (c === ")" && depth > 0) depth--;
      else if (c === "<" && !depth) angle++;
      else if (c === ">" && !depth && angle > 0) angle--;
      if (c === "," && !depth && !angle) {
        items.push(cur);
        cur = "";
        continue;
      }
      cur += c;
    }
  }
  items.push(cur);
  return items.map((s) => s.trim()).filter((s) => s !== "");
}

function closingQuote(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
  return Math.min(j, text.length - 1);
}

/**
 * One address in canonical form: whitespace runs become one space, quoted
 * strings and comments stay as written, and an atom that holds a special
 * character through a backslash escape is written as a quoted string.
 */
function canonicalItem(item: string): string {
  let out = "";
  let atom = "";
  let atomSpecial = false;
  let pendingSpace = false;
  const flushAtom = () => {
    if (!atom) return;
    out += atomSpecial ? `"${atom.replace(/["\\]/g, "\\$&")}"` : atom;
    atom = "";
    atomSpecial = false;
  };
  const emit = (text: string) => {
    if (pendingSpace && out) out += " ";
    pendingSpace = false;
    out += text;
  };
  for (let i = 0; i < item.length; i++) {
    const c = item[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      flushAtom();
      pendingSpace = true;
    } else if (c === "\\" && i + 1 < item.length) {
      if (!atom) emit("");
      const d = item[++i];
      if (SPECIALS.includes(d) || d === " ") atomSpecial = true;
      atom += d;
      out += "";
    } else if (c === '"') {
      flushAtom();
      const end = closingQuote(item, i);
      emit(item.slice(i, end + 1));
      i = end;
    } else if (c === "(") {
      flushAtom();
      let depth = 0, j = i;
      for (; j < item.length; j++) {
        if (item[j] === "\\") j++;
        else if (item[j] === "(") depth++;
        else if (item[j] === ")" && --depth === 0) break;
      }
      emit(item.slice(i, j + 1));
      i = j;
    } else if ("<>@,;:.[]".includes(c)) {
      flushAtom();
      emit(c);
    } else {
      if (!atom) emit("");
      atom += c;
    }
  }
  flushAtom();
  return out;
}

/** An alias value list in the form Postfix stores: items joined by ", ". */
export function canonicalAliasValue(value: string): string {
  return splitList(value).map(canonicalItem).join(", ");
}

/** Parses an aliases(5) source text; bad lines are reported through `warn`. */
export function* parseAliases(
  text: string,
  file: string,
  report: SourceWarning = warn,
): Generator<AliasEntry> {
  for (const line of logicalLines(text, file, report)) {
    const parsed = aliasName(line.text);
    const value = parsed ? canonicalAliasValue(parsed.rest) : "";
    if (!parsed || parsed.name === "" || value === "") {
      report(`${file}, line ${line.lineno}: need name:value pair`);
      continue;
    }
    yield { name: parsed.name, value, lineno: line.lineno };
  }
}

/** Whether a table type gets the YP_* entries (the NIS-style indexed files). */
function wantsYpEntries(type: string): boolean {
  return type === "hash" || type === "btree" || type === "lmdb";
}

/** Writes the entries that mark a complete alias database. */
export async function writeAliasSentinels(dict: Dict, hostname = hostName()): Promise<void> {
  if (wantsYpEntries(dict.type)) {
    // These keys keep their case: NIS clients look them up as written.
    const fold = dict.flags.foldFix;
    dict.flags.foldFix = false;
    try {
      await dict.update("YP_LAST_MODIFIED", String(Math.floor(Date.now() / 1000)));
      await dict.update("YP_MASTER_NAME", hostname);
    } finally {
      dict.flags.foldFix = fold;
    }
  }
  await dict.update("@", "@");
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/** How buildAliasTable() opens and fills the table. */
export interface AliasBuildOptions extends OpenOptions {
  /** Values are file lists to store base64-encoded (not used by postalias). */
  transform?: (value: string) => string;
}

/**
 * Builds the table `type:file` from the aliases source `file` (a new file,
 * renamed into place when complete). Throws DictError when the source or
 * the table cannot be opened.
 */
export async function buildAliasTable(
  spec: string,
  options: AliasBuildOptions = {},
): Promise<void> {
  const { type, name } = splitMapSpec(spec);
  const t = findMapType(type);
  if (!t) throw new DictError(`unsupported dictionary type: ${type}`);
  if (!t.creatable) {
    throw new DictError(
      `unsupported dictionary type: ${type} does not support bulk-mode creation.`,
    );
  }
  const text = readTableFile(name);
  const dict = openMap(spec, { ...options, create: true, write: true });
  try {
    const report = (text: string) => (dict.flush?.(), warn(text));
    for (const e of parseAliases(text, name, report)) await dict.update(e.name, e.value);
    await writeAliasSentinels(dict, options.config?.get("myhostname") || undefined);
  } catch (err) {
    dict.abort?.();
    throw err;
  }
  await dict.close();
}

/** The configuration rebuildAliasDatabases() reads (lib/config's Config fits). */
export interface AliasConfig extends TableConfig {
  list(name: string): string[];
}

/**
 * Rebuilds every alias_database table that is built from a source file
 * (hash, btree, lmdb, cdb: what newaliases and `sendmail -bi` do). Tables of
 * other types (inline, regexp, proxy, ...) have nothing to build and are
 * skipped. Returns the tables rebuilt; throws DictError on the first failure.
 */
export async function rebuildAliasDatabases(config: AliasConfig): Promise<string[]> {
  const defaultType = config.get("default_database_type") || "hash";
  const done: string[] = [];
  for (const entry of config.list("alias_database")) {
    const spec = entry.includes(":") ? entry : `${defaultType}:${entry}`;
    const { type } = splitMapSpec(spec);
    if (!findMapType(type)?.creatable) continue;
    await buildAliasTable(spec, { config, flags: { try1Null: false, try0Null: true } });
    done.push(spec);
  }
  return done;
}
