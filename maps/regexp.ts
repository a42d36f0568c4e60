// regexp: and pcre: tables, as regexp_table(5) and pcre_table(5): lines of
// `/pattern/flags result` (or `!/pattern/flags result`), tried in order, the
// first match giving the result with $1... substituted; `if /pattern/` ...
// `endif` guard a block. Patterns are translated to JavaScript; a rule that
// cannot be read or translated is skipped with a warning naming the file
// and line, and the rest of the table still loads.

import { type OpenOptions, ReadOnlyDict, readTableFile, resolvePath } from "./dict.ts";
import { logicalLines } from "./source.ts";
import { translatePcre, translatePosix, UntranslatableError } from "./regex_translate.ts";
import { warn } from "../lib/log.ts";

interface Rule {
  kind: "match" | "if" | "endif";
  re?: RegExp;
  negated?: boolean;
  /** The result split into literal text and group numbers. */
  result?: (string | number)[];
  /** For an if: the index of its endif. */
  end?: number;
}

/** A parsed `/pattern/flags` and what follows it. */
interface Pattern {
  negated: boolean;
  body: string;
  flags: string;
  rest: string;
}

class SkipRule extends Error {}

/** Opens a regexp: or pcre: table from its file. */
export function openRegexp(type: "regexp" | "pcre", name: string, options: OpenOptions = {}) {
  const text = readTableFile(resolvePath(name, options.cwd));
  const rules = parseRules(type, name, text);
  return new RegexpDict(type, name, rules, options);
}

class RegexpDict extends ReadOnlyDict {
  constructor(type: string, name: string, private rules: Rule[], options: OpenOptions) {
    super(type, name, { ...options.flags, foldFix: false });
  }

  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.lookupSync(key));
  }

  /** The first matching rule's result, with groups substituted. */
  lookupSync(key: string): string | undefined {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i];
      if (rule.kind === "endif") continue;
      rule.re!.lastIndex = 0;
      const m = rule.re!.exec(key);
      const hit = rule.negated ? m === null : m !== null;
      if (rule.kind === "if") {
        if (!hit) i = rule.end!;
        continue;
      }
      if (hit) return substitute(rule.result!, m);
    }
    return undefined;
  }
}

function substitute(parts: (string | number)[], m: RegExpExecArray | null): string {
  let out = "";
  for (const p of parts) out += typeof p === "number" ? (m?.[p] ?? "") : p;
  return out;
}

/** Parses every logical line of a regexp/pcre table into rules. */
function parseRules(type: "regexp" | "pcre", file: string, text: string): Rule[] {
  const rules: Rule[] = [];
  const open: { index: number; lineno: number }[] = [];
  const where = (n: number) => `${type} map ${file}, line ${n}`;
  for (const line of logicalLines(text, file, warn)) {
    const here = where(line.lineno);
    try {
      const word = /^(\S+)/.exec(line.text)![1].toLowerCase();
      if (word === "endif") {
        if (!open.length) throw new SkipRule("ignoring ENDIF without matching IF");
        rules[open.pop()!.index].end = rules.length;
        rules.push({ kind: "endif" });
        continue;
      }
      const isIf = word === "if" || word.startsWith("if/") || word.startsWith("if!");
      const body = isIf ? line.text.slice(2).trimStart() : line.text;
      const pat = parsePattern(body);
      const re = compile(type, pat);
      if (isIf) {
        if (pat.rest !== "") warn(`${here}: ignoring extra text after IF statement: "${pat.rest}"`);
        open.push({ index: rules.length, lineno: line.lineno });
        rules.push({ kind: "if", re, negated: pat.negated });
        continue;
      }
      if (pat.rest === "") warn(`${here}: no replacement text: using empty string`);
      const result = parseResult(pat.rest, groupCount(re), pat.negated);
      rules.push({ kind: "match", re, negated: pat.negated, result });
    } catch (err) {
      if (err instanceof SkipRule) warn(`${here}: ${err.message}`);
      else if (err instanceof UntranslatableError) {
        warn(`${here}: ${err.message}: skipping this rule`);
      } else if (err instanceof SyntaxError) warn(`${here}: ${describeSyntaxError(err)}`);
      else throw err;
    }
  }
  for (const o of open) {
    warn(`${where(o.lineno)}: IF has no matching ENDIF`);
    rules[o.index].end = rules.length;
  }
  return rules;
}

function describeSyntaxError(err: SyntaxError): string {
  const m = /^Invalid regular expression: \/.*\/[a-z]*: (.*)$/s.exec(err.message);
  return `error in regex: ${m ? m[1] : err.message}: skipping this rule`;
}

/** Splits `[!]/body/flags rest`; the delimiter is the first character. */
function parsePattern(text: string): Pattern {
  let i = 0;
  let negated = false;
  while (text[i] === "!") {
    negated = !negated;
    i++;
  }
  const delim = text[i];
  if (delim === undefined || /[A-Za-z0-9\s]/.test(delim)) {
    throw new SkipRule("ignoring unrecognized request");
  }
  const start = ++i;
  while (i < text.length && text[i] !== delim) i += text[i] === "\\" ? 2 : 1;
  if (i >= text.length) {
    throw new SkipRule(`no closing regexp delimiter "${delim}": ignoring this rule`);
  }
  // An escaped delimiter stands for the delimiter character itself.
  let body = text.slice(start, i);
  if (delim !== "\\") {
    body = body.split("\\" + delim).join(/[\\^$.*+?()[\]{}|]/.test(delim) ? "\\" + delim : delim);
  }
  i++;
  const flagStart = i;
  while (i < text.length && !/\s/.test(text[i])) i++;
  const flags = text.slice(flagStart, i);
  return { negated, body, flags, rest: text.slice(i).trim() };
}

/** Compiles a pattern with its table flags into a JavaScript RegExp. */
function compile(type: "regexp" | "pcre", pat: Pattern): RegExp {
  const allowed = type === "regexp" ? "imx" : "imsxAEUX";
  // Both tables match without regard to case unless the i flag toggles it.
  let icase = true, multi = false, ext = type === "regexp", dotall = false;
  let anchored = false, endOnly = false, ungreedy = false;
  for (const f of pat.flags) {
    if (!allowed.includes(f)) {
      throw new SkipRule(`unknown regexp option "${f}": skipping this rule`);
    }
    if (f === "i") icase = !icase;
    else if (f === "m") multi = !multi;
    else if (f === "x") ext = !ext;
    else if (f === "s") dotall = !dotall;
    else if (f === "A") anchored = true;
    else if (f === "E") endOnly = true;
    else if (f === "U") ungreedy = !ungreedy;
  }
  let source: string, jsFlags = "";
  if (type === "regexp") {
    source = translatePosix(pat.body, { extended: ext, newline: multi });
  } else {
    const t = translatePcre(pat.body, {
      extended: ext,
      multiline: multi,
      dollarEndOnly: endOnly,
      ungreedy,
    });
    source = t.source;
    if (t.flags.includes("i")) icase = true;
    if (t.flags.includes("m")) multi = true;
    if (t.flags.includes("s")) dotall = true;
  }
  if (icase) jsFlags += "i";
  if (multi) jsFlags += "m";
  if (dotall) jsFlags += "s";
  if (anchored) jsFlags += "y";
  return new RegExp(source, jsFlags);
}

function groupCount(re: RegExp): number {
  return new RegExp(re.source + "|").exec("")!.length - 1;
}

/** Parses `$1`, `${1}`, `$(1)` and `$$` in a result. */
function parseResult(text: string, groups: number, negated: boolean): (string | number)[] {
  const parts: (string | number)[] = [];
  let lit = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "$") {
      lit += c;
      continue;
    }
    const m = /^\$(?:(\d+)|\{(\d+)\}|\((\d+)\))/.exec(text.slice(i));
    if (text[i + 1] === "$") {
      lit += "$";
      i++;
      continue;
    }
    if (!m) {
      lit += c;
      continue;
    }
    const n = Number(m[1] ?? m[2] ?? m[3]);
    if (negated) {
      throw new SkipRule("$number found in negative match replacement text: skipping this rule");
    }
    if (n < 1 || n > groups) {
      throw new SkipRule(`out of range replacement index "${n}": skipping this rule`);
    }
    if (lit) parts.push(lit);
    lit = "";
    parts.push(n);
    i += m[0].length - 1;
  }
  if (lit) parts.push(lit);
  return parts;
}
