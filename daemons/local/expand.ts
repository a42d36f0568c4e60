// local(8)'s own $name expansion and its alias/.forward value syntax.
//
// forward_path, luser_relay and command_execution_directory are expanded
// with the recipient's attributes only ($user, $home, $shell, $recipient,
// $extension, $domain, $local, $recipient_delimiter, and the ${name?value}
// / ${name:value} forms), never with main.cf parameters; each value has the
// characters outside the parameter's filter (forward_expansion_filter, ...)
// replaced with "_", so that a recipient address cannot smuggle shell or
// path syntax into a file name or command.

import { expand, MacroError } from "../../lib/config/expand.ts";
import { unquoteAddress } from "../../lib/address/quote.ts";

/** The recipient attributes that local(8) expansions may name. */
export interface ExpandAttrs {
  user: string;
  home: string;
  shell: string;
  recipient: string;
  extension: string;
  domain: string;
  local: string;
  recipient_delimiter: string;
}

/** Replaces each character of `value` that is not in `allowed` with "_". */
export function filterChars(value: string, allowed: string): string {
  let out = "";
  for (const ch of value) out += allowed.includes(ch) ? ch : "_";
  return out;
}

/**
 * Expands `template` with the recipient's attributes, each filtered
 * through `allowed`. An empty attribute counts as undefined, so
 * ${extension?...} applies only when there is an extension. Malformed
 * templates throw MacroError.
 */
export function localExpand(
  template: string,
  attrs: Partial<ExpandAttrs>,
  allowed: string,
): string {
  const lookup = (name: string): string | undefined => {
    const value = (attrs as Record<string, string | undefined>)[name];
    return value ? filterChars(value, allowed) : undefined;
  };
  return expand(template, lookup);
}

export { MacroError };

/** One destination in an alias value, a .forward line or an :include: file. */
export type Token =
  | { kind: "command"; command: string }
  | { kind: "file"; path: string }
  | { kind: "include"; path: string }
  | { kind: "address"; address: string };

/** Splits a value at commas outside quotes, comments and angle brackets. */
export function splitValue(text: string): string[] {
  const items: string[] = [];
  let cur = "";
  let quoted = false;
  let comment = 0;
  let angle = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
      cur += c;
      continue;
    }
    if (c === '"' && !comment) quoted = true;
    else if (c === "(") comment++;
    else if (c === ")" && comment) {
      comment--;
      continue;
    } else if (c === "<" && !comment) angle++;
    else if (c === ">" && !comment && angle) angle--;
    else if ((c === "," || c === "\n") && !comment && !angle) {
      items.push(cur);
      cur = "";
      continue;
    }
    if (comment) continue;
    cur += c;
  }
  items.push(cur);
  return items.map((s) => s.trim()).filter((s) => s !== "");
}

/** Classifies one list item as a command, file, :include: or address, as aliases(5) says. */
export function parseToken(item: string): Token {
  let text = item.trim();
  // A whole item in quotes: "|command with spaces", "/file name".
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    const inner = text.slice(1, -1).replace(/\\(.)/g, "$1");
    if (inner.startsWith("|") || inner.startsWith("/") || /^:include:/i.test(inner)) text = inner;
  }
  // "Name <address>" and "<address>": the address in angle brackets.
  const angle = /<([^<>]*)>\s*$/.exec(text);
  if (angle && !text.startsWith('"|')) text = angle[1].trim();
  if (text.startsWith("|")) return { kind: "command", command: text.slice(1).trim() };
  if (/^:include:/i.test(text)) return { kind: "include", path: text.slice(9).trim() };
  if (text.startsWith("/")) return { kind: "file", path: text };
  // "\user" asks for the user's own mailbox; the escape itself is not part of the name.
  if (text.startsWith("\\")) text = text.slice(1);
  return { kind: "address", address: unquoteAddress(text) };
}

/** Every destination in a value. */
export function parseTokens(text: string): Token[] {
  return splitValue(text).map(parseToken);
}
