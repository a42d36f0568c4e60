// Parameter expansion as postconf(5) describes it: $name, ${name}, $(name),
// ${name?value}, ${name:value}, ${name?{value}}, ${name:{value}},
// ${name?{value1}:{value2}}, ${{text1} == {text2} ? {a} : {b}} with the
// operators == != < <= > >= and their compatibility-level forms (<level ...),
// and $$ for a literal dollar sign.

/** Returns a parameter's unexpanded value, or undefined when it has none. */
export type Lookup = (name: string) => string | undefined;

/** A malformed or runaway expansion, worded as Postfix words it. */
export class MacroError extends Error {
  /** How deep in $name references the error was found (0: in the text itself). */
  depth = 0;
  /** Every warning the reference prints for this error (one per line). */
  readonly messages: string[];
  constructor(message: string, messages?: string[]) {
    super(message);
    this.name = "MacroError";
    this.messages = messages ?? [message];
  }
}

/** Expansion settings. */
export interface ExpandOptions {
  /** Called for each $name that has no value (postconf warns "undefined parameter"). */
  onUndefined?: (name: string) => void;
}

/** Postfix gives up at this nesting depth ("unreasonable macro call nesting"). */
const maxDepth = 100;

/** Expands every macro in `text`; names resolve through `lookup`, recursively. */
export function expand(text: string, lookup: Lookup, options: ExpandOptions = {}): string {
  return new Expander(lookup, options).run(text, 0);
}

class Expander {
  constructor(private lookup: Lookup, private options: ExpandOptions) {}

  run(text: string, depth: number): string {
    try {
      return this.tokens(text, depth);
    } catch (err) {
      if (err instanceof MacroError && err.depth === 0) err.depth = depth;
      throw err;
    }
  }

  /**
   * Postfix checks the nesting at every piece of text (literal or $name) and
   * names each piece of the too-deep text before giving up.
   */
  private check(piece: string, depth: number): void {
    if (depth > maxDepth) throw new MacroError(`unreasonable macro call nesting: "${piece}"`);
  }

  private tokens(text: string, depth: number): string {
    if (depth > maxDepth) throw this.tooDeep(text);
    if (!text.includes("$")) {
      if (text) this.check(text, depth);
      return text;
    }
    let out = "";
    let i = 0;
    while (i < text.length) {
      const at = text.indexOf("$", i);
      if (at < 0) {
        if (i < text.length) this.check(text.slice(i), depth);
        out += text.slice(i);
        break;
      }
      if (at > i) this.check(text.slice(i, at), depth);
      out += text.slice(i, at);
      const next = text[at + 1];
      if (next === "$") {
        out += "$";
        i = at + 2;
      } else if (next === "{" || next === "(") {
        const close = matching(text, at + 1);
        if (close < 0) throw new MacroError(`truncated macro reference: "${text.slice(at)}"`);
        out += this.braced(text.slice(at + 2, close), depth);
        i = close + 1;
      } else {
        const m = /^[A-Za-z0-9_]+/.exec(text.slice(at + 1));
        if (!m) {
          out += "$";
          i = at + 1;
          continue;
        }
        this.check(m[0], depth);
        out += this.value(m[0], depth);
        i = at + 1 + m[0].length;
      }
    }
    return out;
  }

  /** The nesting error for a too-deep text, naming each of its pieces. */
  private tooDeep(text: string): MacroError {
    const pieces: string[] = [];
    for (let i = 0; i < text.length;) {
      const at = text.indexOf("$", i);
      if (at < 0 || at > i) {
        pieces.push(text.slice(i, at < 0 ? text.length : at));
        if (at < 0) break;
      }
      const m = /^\$(?:[{(])?([A-Za-z0-9_]+)/.exec(text.slice(at));
      if (m) pieces.push(m[1]);
      const close = text[at + 1] === "{" || text[at + 1] === "(" ? matching(text, at + 1) : -1;
      i = close > 0 ? close + 1 : at + (m ? m[0].length : 1);
    }
    const messages = pieces.map((p) => `unreasonable macro call nesting: "${p}"`);
    return new MacroError(messages[0] ?? "unreasonable macro call nesting", messages);
  }

  /** A parameter's expanded value; "" (and a warning hook) when undefined. */
  private value(name: string, depth: number): string {
    const raw = this.lookup(name);
    if (raw === undefined) {
      this.options.onUndefined?.(name);
      return "";
    }
    return this.run(raw, depth + 1);
  }

  /** The inside of ${...} or $(...). */
  private braced(body: string, depth: number): string {
    if (/^\s*\{/.test(body)) return this.relational(body, depth);
    const m = /^([A-Za-z0-9_]+)\s*(?:([?:])([\s\S]*))?$/.exec(body);
    if (!m) throw new MacroError(`attribute name syntax error at: "...${body}"`);
    const [, name, op, rest] = m;
    this.check(name, depth);
    if (!op) return this.value(name, depth);
    const raw = this.lookup(name);
    if (raw === undefined) this.options.onUndefined?.(name);
    const nonEmpty = raw !== undefined && raw !== "";
    // "?" expands its value when $name is non-empty, ":" when it is empty;
    // ${name?{a}:{b}} chooses between two.
    if (op === ":") return nonEmpty ? "" : this.run(unbrace(rest), depth + 1);
    const [whenSet, whenUnset] = conditional(rest);
    return this.run((nonEmpty ? whenSet : whenUnset) ?? "", depth + 1);
  }

  /** ${{text1} OP {text2} ? {a} : {b}}. */
  private relational(body: string, depth: number): string {
    const parts = scanRelational(body);
    const left = this.run(parts.left, depth + 1);
    const right = this.run(parts.right, depth + 1);
    const result = compare(left, parts.op, right);
    const chosen = result ? parts.then : parts.otherwise;
    return chosen === undefined ? "" : this.run(chosen, depth + 1);
  }
}

/** Index of the bracket closing the one at `open` (same kind, nested), or -1. */
function matching(text: string, open: number): number {
  const opener = text[open];
  const closer = opener === "{" ? "}" : ")";
  let level = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === opener) level++;
    else if (text[i] === closer && --level === 0) return i;
  }
  return -1;
}

/** Reads `{text}` at the start of `s` (after blanks): the text and what follows. */
function takeBraced(s: string): [string, string] | undefined {
  const start = s.search(/\S/);
  if (start < 0 || s[start] !== "{") return undefined;
  const close = matching(s, start);
  if (close < 0) throw new MacroError(`unmatched '{' at: "...${s}"`);
  return [s.slice(start + 1, close), s.slice(close + 1)];
}

/** `value`, `{value}` or `{value1}:{value2}` after `?`. */
function conditional(rest: string): [string, string | undefined] {
  const first = takeBraced(rest);
  if (!first) return [rest, undefined];
  const after = first[1].trim();
  if (after === "") return [first[0], undefined];
  if (!after.startsWith(":")) throw new MacroError(`':' expected at: "...${after}"`);
  const second = takeBraced(after.slice(1));
  if (!second || second[1].trim() !== "") {
    throw new MacroError(`'{' expected at: "...${after.slice(1)}"`);
  }
  return [first[0], second[0]];
}

/** `value` or `{value}` after `:`. */
function unbrace(rest: string): string {
  const taken = takeBraced(rest);
  if (!taken || taken[1].trim() !== "") return rest;
  return taken[0];
}

interface Relational {
  left: string;
  op: string;
  right: string;
  then?: string;
  otherwise?: string;
}

const operators = ["==", "!=", "<=", ">=", "<", ">"];

function scanRelational(body: string): Relational {
  const left = takeBraced(body)!;
  let rest = left[1].trimStart();
  const op = operators.find((o) => rest.startsWith(o));
  if (!op) {
    throw new MacroError(
      `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...${rest}"`,
    );
  }
  rest = rest.slice(op.length);
  let level = "";
  if (rest.startsWith("level")) {
    level = "level";
    rest = rest.slice(5);
  }
  const right = takeBraced(rest);
  if (!right) throw new MacroError(`'{' expected at: "...${rest}"`);
  rest = right[1].trimStart();
  if (!rest.startsWith("?")) throw new MacroError(`'?' expected at: "...${rest}"`);
  const [then, otherwise] = conditional(rest.slice(1));
  return { left: left[0], op: op + level, right: right[0], then, otherwise };
}

/** Compares as numbers when both sides are decimal, as levels with "level". */
function compare(left: string, op: string, right: string): boolean {
  let diff: number;
  const bare = op.replace("level", "");
  if (op.endsWith("level")) {
    diff = compareLevels(left, right);
  } else if (/^\d+$/.test(left) && /^\d+$/.test(right)) {
    diff = Number(left) - Number(right);
  } else {
    diff = left < right ? -1 : left > right ? 1 : 0;
  }
  switch (bare) {
    case "==":
      return diff === 0;
    case "!=":
      return diff !== 0;
    case "<":
      return diff < 0;
    case "<=":
      return diff <= 0;
    case ">":
      return diff > 0;
    default:
      return diff >= 0;
  }
}

/** Compatibility levels: "2" < "3.6" < "3.6.1" (missing parts are zero). */
export function compareLevels(a: string, b: string): number {
  const pa = a.split(".").map((x) => parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
