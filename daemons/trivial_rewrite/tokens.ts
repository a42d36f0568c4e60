// An address as a list of tokens, the way trivial-rewrite(8) works on
// addresses: RFC 822 words and specials (lib/address/tokens.ts), with `%`
// and `!` split out of atoms as routing operators of their own, and with a
// note of where the source had white space so that internalizing gives back
// what was written ("a b@x" stays "a b@x").

import { quoteAddress, scanTokens } from "../../lib/address/mod.ts";

/** One token: a word kind, or the special character itself ("@", ".", "%", "!", ":"...). */
export interface AddrToken {
  type: "atom" | "qstring" | "domlit" | "comment" | string;
  /** atom: text; qstring: content without quotes; domlit: with brackets; comment: content. */
  text: string;
  /** Whether white space preceded the token in the source. */
  space: boolean;
  /** qstring: the content as written, backslashes included. */
  raw?: string;
}

/**
 * Splits an address into tokens; `%` and `!` become operators of their own.
 * A quote that is never closed is an ordinary character in an internal-form
 * address (a"b@example.org keeps its domain); in an external-form one it
 * opens a quoted string to the end, set apart by a space (a"b rewrites to
 * "a b"@origin). Both as the reference answers.
 */
export function scanAddress(address: string, external = false): AddrToken[] {
  const out: AddrToken[] = [];
  let lastEnd = -1;
  for (const tok of scanTokens(address)) {
    const space = lastEnd >= 0 && tok.start > lastEnd;
    lastEnd = tok.end;
    if (tok.type === "qstring" && !closedQuote(address, tok.start, tok.end) && external) {
      out.push({ type: "qstring", text: tok.text, space: out.length > 0, raw: tok.text });
      continue;
    }
    if (tok.type === "qstring" && !closedQuote(address, tok.start, tok.end)) {
      const rest = scanAddress(address.slice(tok.start + 1));
      const first = rest[0];
      if (first?.type === "atom" && !first.space) {
        out.push({ type: "atom", text: `"${first.text}`, space }, ...rest.slice(1));
      } else {
        out.push({ type: "atom", text: '"', space }, ...rest);
      }
      break;
    }
    if (tok.type === "special") {
      out.push({ type: tok.text, text: tok.text, space });
    } else if (tok.type === "atom" && /[%!]/.test(tok.text)) {
      let first = true;
      for (const part of tok.text.split(/([%!])/)) {
        if (part === "") continue;
        const type = part === "%" || part === "!" ? part : "atom";
        out.push({ type, text: part, space: first && space });
        first = false;
      }
    } else if (tok.type === "qstring") {
      const raw = address.slice(tok.start + 1, tok.end - 1);
      out.push({ type: tok.type, text: tok.text, space, raw });
    } else {
      out.push({ type: tok.type, text: tok.text, space });
    }
  }
  return out;
}

/** Whether the quoted string at [start, end) ends with its own closing quote. */
function closedQuote(address: string, start: number, end: number): boolean {
  if (end - start < 2 || address[end - 1] !== '"') return false;
  // The last quote must not be escaped: count the backslashes before it.
  let slashes = 0;
  for (let i = end - 2; i > start && address[i] === "\\"; i--) slashes++;
  return slashes % 2 === 0;
}

/** One operator token. */
export function op(type: string): AddrToken {
  return { type, text: type, space: false };
}

/** Index of the last token of `type`, or -1. */
export function lastOf(tokens: AddrToken[], type: string, before = tokens.length): number {
  for (let i = before - 1; i >= 0; i--) if (tokens[i].type === type) return i;
  return -1;
}

/** Index of the first token of `type`, or -1. */
export function firstOf(tokens: AddrToken[], type: string, from = 0): number {
  for (let i = from; i < tokens.length; i++) if (tokens[i].type === type) return i;
  return -1;
}

/**
 * The tokens as one string. White space from the source is kept as one
 * space; two words in a row (and a word and a comment after it) are written
 * apart in the domain, and everywhere with `allWords` (external form), as
 * the reference writes them. With `keepQuotes`, quoted strings are written
 * as they came: an internal-form address with literal quotes (`"a b"@x`)
 * leaves as it arrived.
 */
export function internalize(tokens: AddrToken[], keepQuotes = false, allWords = false): string {
  const domainFrom = allWords ? 0 : lastOf(tokens, "@") + 1;
  let out = "";
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (i > 0 && (t.space || (i > domainFrom && spaced(tokens[i - 1], t)))) out += " ";
    if (t.type === "comment") out += `(${t.text})`;
    else if (t.type === "qstring" && keepQuotes) out += `"${t.raw ?? t.text}"`;
    else out += t.text;
  }
  return out;
}

const WORDS = new Set(["atom", "qstring", "domlit"]);

/** Two words in a row are written apart, as are a word and a comment after it. */
function spaced(prev: AddrToken, t: AddrToken): boolean {
  return WORDS.has(prev.type) && (WORDS.has(t.type) || t.type === "comment");
}

/**
 * The tokens as one external-form address: the local part (before the last
 * `@`) quoted when it is not a dot-atom. A lone `@` is the empty quoted
 * string, as Postfix prints it.
 */
export function externalize(tokens: AddrToken[]): string {
  const text = internalize(tokens, false, true);
  // A lone @ or an empty quoted string both print as the empty quoted string.
  if (text === "@" || (text === "" && tokens.length > 0)) return '""';
  return quoteAddress(text);
}
