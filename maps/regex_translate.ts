// Translation of POSIX (regexp_table(5)) and PCRE (pcre_table(5)) patterns to
// JavaScript regular expressions. What JavaScript cannot express (POSIX
// collating elements, PCRE atomic groups, possessive quantifiers, recursion,
// conditionals, \G, callouts) is reported by throwing UntranslatableError,
// and the table skips that rule with a warning naming the file and line.

/** A construct without a JavaScript equivalent. */
export class UntranslatableError extends Error {
  constructor(readonly construct: string) {
    super(`cannot translate "${construct}" to a JavaScript regular expression`);
    this.name = "UntranslatableError";
  }
}

const posixClasses: Record<string, string> = {
  alpha: "A-Za-z",
  digit: "0-9",
  alnum: "0-9A-Za-z",
  upper: "A-Z",
  lower: "a-z",
  space: " \\t\\n\\r\\f\\v",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  xdigit: "0-9A-Fa-f",
  word: "0-9A-Za-z_",
};

/**
 * Reads a bracket expression starting at `src[i] === "["`; returns its
 * JavaScript form and the index after it. POSIX brackets take backslash
 * literally; PCRE brackets take it as an escape.
 */
function translateBracket(
  src: string,
  i: number,
  posix: boolean,
  excludeNewline: boolean,
): [string, number] {
  let out = "[";
  i++;
  let negated = false;
  if (src[i] === "^") {
    negated = true;
    out += "^";
    i++;
  }
  if (negated && excludeNewline) out += "\\n";
  let first = true;
  while (i < src.length) {
    const c = src[i];
    if (c === "]" && !first) return [out + "]", i + 1];
    first = false;
    if (c === "[" && (src[i + 1] === ":" || src[i + 1] === "=" || src[i + 1] === ".")) {
      const kind = src[i + 1];
      const end = src.indexOf(kind + "]", i + 2);
      if (end < 0) throw new SyntaxError("unterminated character class");
      const name = src.slice(i + 2, end);
      if (kind !== ":") throw new UntranslatableError(`[${kind}${name}${kind}]`);
      const cls = posixClasses[name];
      if (cls === undefined) throw new SyntaxError(`invalid character class "${name}"`);
      out += cls;
      i = end + 2;
      continue;
    }
    if (c === "\\") {
      if (posix) {
        out += "\\\\";
        i++;
        continue;
      }
      out += src.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (c === "/" || (c === "[" && !posix)) {
      out += "\\" + c;
    } else if (c === "[") {
      out += "\\[";
    } else {
      out += c;
    }
    i++;
  }
  throw new SyntaxError("brackets ([ ]) not balanced");
}

/** Options that shape a POSIX translation. */
export interface PosixOptions {
  /** REG_EXTENDED (the x flag, on by default); off means basic syntax. */
  extended: boolean;
  /** REG_NEWLINE (the m flag). */
  newline: boolean;
}

/** Translates a POSIX regular expression (GNU regex dialect) to JavaScript source. */
export function translatePosix(src: string, opts: PosixOptions): string {
  let out = "";
  for (let i = 0; i < src.length;) {
    const c = src[i];
    if (c === "[") {
      const [cls, next] = translateBracket(src, i, true, opts.newline);
      out += cls;
      i = next;
      continue;
    }
    if (c === "\\") {
      const d = src[i + 1];
      if (d === undefined) throw new SyntaxError("trailing backslash (\\)");
      i += 2;
      if (!opts.extended && "(){}|+?".includes(d)) {
        out += d; // basic syntax: \( \) \{ \} are the operators
      } else if (/[1-9]/.test(d) || "wWsSbB".includes(d)) {
        out += "\\" + d;
      } else if (d === "<") {
        out += "\\b(?=\\w)";
      } else if (d === ">") {
        out += "\\b(?<=\\w)";
      } else if (d === "`") {
        out += "(?<![\\s\\S])";
      } else if (d === "'") {
        out += "(?![\\s\\S])";
      } else if (/[A-Za-z0-9]/.test(d)) {
        out += d; // GNU regex takes other escaped letters literally
      } else {
        out += "\\" + d;
      }
      continue;
    }
    if (!opts.extended && "(){}|+?".includes(c)) {
      out += "\\" + c;
    } else if (c === "/") {
      out += "\\/";
    } else if (c === "." && !opts.newline) {
      out += "[\\s\\S]";
    } else {
      out += c;
    }
    i++;
  }
  return out;
}

/** Options that shape a PCRE translation. */
export interface PcreOptions {
  /** PCRE_EXTENDED: whitespace and # comments outside classes are ignored. */
  extended: boolean;
  /** PCRE_MULTILINE. */
  multiline: boolean;
  /** PCRE_DOLLAR_ENDONLY. */
  dollarEndOnly: boolean;
  /** PCRE_UNGREEDY. */
  ungreedy: boolean;
}

const pcreUnsupported = ["(?>", "(?R", "(?(", "(?C", "(?|", "(?&", "(?P>", "(*", "(?+", "(?-"];

/** Translates a PCRE pattern to JavaScript source; returns extra flags found inline. */
export function translatePcre(src: string, opts: PcreOptions): { source: string; flags: string } {
  let out = "";
  let flags = "";
  // A leading (?i) / (?s) / (?m) group sets options for the whole pattern.
  const lead = /^\(\?([imsx]+)\)/.exec(src);
  if (lead) {
    flags = lead[1].replace("x", "");
    if (lead[1].includes("x")) opts = { ...opts, extended: true };
    src = src.slice(lead[0].length);
  }
  const pending = [0]; // modifier groups to close, per open group
  for (let i = 0; i < src.length;) {
    const c = src[i];
    // (?i) in mid-pattern applies to the rest of its group: a modifier group
    // (?i: ... ) closed where the enclosing group closes.
    const inline = c === "(" ? /^\(\?([ims]*)(?:-([ims]+))?\)/.exec(src.slice(i)) : null;
    if (inline && (inline[1] || inline[2])) {
      out += `(?${inline[1]}${inline[2] ? "-" + inline[2] : ""}:`;
      pending[pending.length - 1]++;
      i += inline[0].length;
      continue;
    }
    for (const bad of pcreUnsupported) {
      if (src.startsWith(bad, i) && !(bad === "(?-" && /^\(\?-[imsx]+:/.test(src.slice(i)))) {
        throw new UntranslatableError(bad);
      }
    }
    if (src.startsWith("(?#", i)) {
      const end = src.indexOf(")", i);
      i = end < 0 ? src.length : end + 1;
      continue;
    }
    if (c === "(") {
      pending.push(0);
      const named = src.startsWith("(?P<", i);
      out += named ? "(?<" : c;
      i += named ? 4 : 1;
      continue;
    }
    if (c === ")" && pending.length > 1) {
      out += ")".repeat(pending.pop()!) + ")";
      i++;
      continue;
    }
    if (opts.extended && /\s/.test(c)) {
      i++;
      continue;
    }
    if (opts.extended && c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "[") {
      const [cls, next] = translateBracket(src, i, false, false);
      out += cls;
      i = next;
      continue;
    }
    if (c === "\\") {
      const [piece, next] = translatePcreEscape(src, i);
      out += piece;
      i = next;
      continue;
    }
    if (c === "$" && !opts.multiline && !opts.dollarEndOnly) {
      out += "(?=\\n?(?![\\s\\S]))"; // PCRE: $ also matches before a final newline
      i++;
      continue;
    }
    if (c === "/") {
      out += "\\/";
      i++;
      continue;
    }
    if ("*+?}".includes(c) && i > 0) {
      const [q, next] = translateQuantifier(src, i, opts.ungreedy);
      out += q;
      i = next;
      continue;
    }
    out += c;
    i++;
  }
  out += ")".repeat(pending[0]);
  return { source: out, flags };
}

// A quantifier (*, +, ?, or the } closing {n,m}) and its ?/+ suffix.
function translateQuantifier(src: string, i: number, ungreedy: boolean): [string, number] {
  const c = src[i];
  const prev = src[i - 1];
  // "?" right after "(" opens a group extension, not a quantifier.
  if (c === "?" && prev === "(") return [c, i + 1];
  if (c === "}" && !/\{\d+(,\d*)?$/.test(src.slice(0, i))) return [c, i + 1];
  const next = src[i + 1];
  if (next === "+") throw new UntranslatableError(src.slice(i, i + 2));
  if (next === "?") return [ungreedy ? c : c + "?", i + 2];
  return [ungreedy ? c + "?" : c, i + 1];
}

function translatePcreEscape(src: string, i: number): [string, number] {
  const d = src[i + 1];
  if (d === undefined) throw new SyntaxError("\\ at end of pattern");
  switch (d) {
    case "A":
      return ["(?<![\\s\\S])", i + 2];
    case "z":
      return ["(?![\\s\\S])", i + 2];
    case "Z":
      return ["(?=\\n?(?![\\s\\S]))", i + 2];
    case "h":
      return ["[ \\t]", i + 2];
    case "H":
      return ["[^ \\t]", i + 2];
    case "R":
      return ["(?:\\r\\n|[\\n\\v\\f\\r\\x85])", i + 2];
    case "Q": {
      const end = src.indexOf("\\E", i + 2);
      const lit = src.slice(i + 2, end < 0 ? src.length : end);
      return [lit.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&"), end < 0 ? src.length : end + 2];
    }
    case "E":
      return ["", i + 2];
    case "x":
      if (src[i + 2] === "{") {
        const end = src.indexOf("}", i + 3);
        const hex = src.slice(i + 3, end);
        if (end < 0 || !/^[0-9a-fA-F]{1,4}$/.test(hex)) {
          throw new UntranslatableError(`\\x{${hex}}`);
        }
        return [`\\u${hex.padStart(4, "0")}`, end + 1];
      }
      return ["\\x", i + 2];
    case "G":
    case "K":
    case "X":
    case "C":
    case "p":
    case "P":
    case "g":
      throw new UntranslatableError(`\\${d}`);
    default:
      return ["\\" + d, i + 2];
  }
}
