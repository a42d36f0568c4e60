// RFC 5322 address lists in header values (From:, To:, Cc:, Resent-*, ...)
// parsed into mailboxes and groups the way Postfix's tok822 parser does:
// display names, comments, groups, quoted strings, angle addresses and
// obsolete source routes. Nothing is rejected, and the quirks are the
// reference's: two words in a row (`foo bar`) are two addresses, words after
// an angle address (`x <y> z`) start another one, a `<` without its `>`
// makes the whole element one address, an empty element is kept. The parsed
// list prints again (tokens joined as tok822 joins them) after its addresses
// were rewritten.

import { quoteAddress, quoteString } from "./quote.ts";
import { scanTokens, type Token } from "./tokens.ts";

/** One address of a list: `phrase <route:addr> (comment)` or `addr (comment)`. */
export interface Mailbox {
  kind: "mailbox";
  /** The address in internal form (local part unquoted, no route). */
  address: string;
  /** The display name as written, "" when none. */
  phrase: string;
  /** The comments of the mailbox, their content without parentheses. */
  comments: string[];
  /** Whether the address was in angle brackets. */
  angle: boolean;
  /** The obsolete source route (`@a,@b`) that preceded the address, "" when none. */
  route: string;
  /** The address as it was written (external form, with its route). */
  source: string;
  /** The tokens printed before the address (phrase, comments, `<`). */
  before: Token[];
  /** The tokens printed after the address (`>`, comments). */
  after: Token[];
}

/** A named group: `name: mailbox, mailbox;`. */
export interface Group {
  kind: "group";
  /** The group's display name as written. */
  name: string;
  members: Mailbox[];
  /** The tokens of the name. */
  nameTokens: Token[];
}

/** An element without an address (`a, , b` or a lone comment), kept for printing. */
export interface Empty {
  kind: "empty";
  tokens: Token[];
}

/** An element of an address list. */
export type ListEntry = Mailbox | Group | Empty;

/** Options for parseAddressList(). */
export interface ParseOptions {
  /** header_address_token_limit: tokens past it are ignored. */
  tokenLimit?: number;
}

const isWord = (t: Token) => t.type === "atom" || t.type === "qstring" || t.type === "domlit";
const isSpecial = (t: Token, chars: string) => t.type === "special" && chars.includes(t.text);

/** Whether tok822 puts a space between two adjacent tokens when it prints them. */
function needSpace(a: Token, b: Token): boolean {
  if (isSpecial(b, ".@>,;:")) return false;
  if (isSpecial(a, ".@<")) return false;
  return true;
}

/** A token as printed: quoted strings quoted, comments in parentheses. */
function printToken(t: Token, internal: boolean): string {
  if (t.type === "qstring") return internal ? t.text : quoteString(t.text);
  if (t.type === "comment") return `(${t.text})`;
  return t.text;
}

/** Joins tokens as tok822 prints them (`internal`: quoted strings unquoted). */
export function joinTokens(tokens: Token[], internal = false): string {
  let out = "";
  tokens.forEach((t, i) => {
    if (i > 0 && needSpace(tokens[i - 1], t)) out += " ";
    out += printToken(t, internal);
  });
  return out;
}

/** Splits an obsolete route (`@a,@b:`) from the front of angle-address tokens. */
function splitRoute(tokens: Token[]): [string, Token[]] {
  if (tokens.length === 0 || !isSpecial(tokens[0], "@")) return ["", tokens];
  const colon = tokens.findIndex((t) => isSpecial(t, ":"));
  if (colon < 0) return ["", tokens];
  return [tokens.slice(0, colon).map((t) => t.text).join(""), tokens.slice(colon + 1)];
}

function mailbox(
  source: string,
  before: Token[],
  addr: Token[],
  after: Token[],
  angle: boolean,
  route = "",
): Mailbox {
  const words = before.filter((t) => t.type !== "comment" && !isSpecial(t, "<"));
  const comments = [...before, ...addr, ...after].filter((t) => t.type === "comment")
    .map((t) => t.text);
  const bare = addr.filter((t) => t.type !== "comment");
  return {
    kind: "mailbox",
    address: joinTokens(bare, true),
    phrase: words.length ? source.slice(words[0].start, words[words.length - 1].end) : "",
    comments,
    angle,
    route,
    source: (route ? route + ":" : "") + joinTokens(bare),
    before,
    after: angle ? after : [...addr.filter((t) => t.type === "comment"), ...after],
  };
}

/** Splits a run of words without angle brackets into addr-specs (`foo bar` is two). */
function addrSpecs(source: string, tokens: Token[]): Mailbox[] {
  const out: Mailbox[] = [];
  let lead: Token[] = [];
  let current: Token[] = [];
  let comments: Token[] = [];
  const flush = () => {
    if (current.length) out.push(mailbox(source, lead, current, comments, false));
    lead = [];
    current = [];
    comments = [];
  };
  for (const t of tokens) {
    if (t.type === "comment") {
      (current.length ? comments : lead).push(t);
      continue;
    }
    const last = current.at(-1);
    if (last && (comments.length || (isWord(last) && isWord(t)))) flush();
    current.push(t);
  }
  flush();
  return out;
}

/** Parses the tokens of one element (between commas) into mailboxes. */
function parseElement(source: string, tokens: Token[]): ListEntry[] {
  const out: ListEntry[] = [];
  let i = 0;
  while (i < tokens.length) {
    const lt = tokens.findIndex((t, k) => k >= i && isSpecial(t, "<"));
    const gt = lt < 0 ? -1 : tokens.findIndex((t, k) => k > lt && isSpecial(t, ">"));
    if (lt >= 0 && gt < 0) {
      // A `<` without its `>`: the rest is one address, `<` and all.
      const rest = tokens.slice(i);
      out.push(mailbox(source, [], rest.filter((t) => t.type !== "comment"), [], false));
      return out;
    }
    if (lt < 0) {
      out.push(...addrSpecs(source, tokens.slice(i)));
      break;
    }
    const [route, addr] = splitRoute(tokens.slice(lt + 1, gt));
    let end = gt + 1;
    while (end < tokens.length && tokens[end].type === "comment") end++;
    const before = [...tokens.slice(i, lt), tokens[lt]];
    out.push(mailbox(source, before, addr, tokens.slice(gt, end), true, route));
    i = end;
  }
  if (out.length === 0) out.push({ kind: "empty", tokens });
  return out;
}

/** Parses a header value holding an address list. */
export function parseAddressList(value: string, options: ParseOptions = {}): ListEntry[] {
  const tokens = scanTokens(value, options.tokenLimit ?? Infinity);
  const entries: ListEntry[] = [];
  let group: Group | null = null;
  let current: Token[] = [];
  let inAngle = false;
  let prev: Token | undefined;

  const flush = () => {
    const items = parseElement(value, current);
    current = [];
    for (const item of items) {
      if (item.kind === "empty" && item.tokens.length === 0) continue;
      if (group && item.kind === "mailbox") group.members.push(item);
      else if (!group) entries.push(item);
    }
  };

  for (const tok of tokens) {
    if (inAngle) {
      current.push(tok);
      if (isSpecial(tok, ">")) inAngle = false;
    } else if (isSpecial(tok, "<")) {
      // Commas inside <...> do not separate elements; a `<` without `>` opens nothing.
      inAngle = tokens.some((t) => t.start > tok.start && isSpecial(t, ">"));
      current.push(tok);
    } else if (isSpecial(tok, ",")) {
      // An empty element between two commas is kept (`a, , b` prints so).
      if (current.length === 0 && prev && isSpecial(prev, ",") && !group) {
        entries.push({ kind: "empty", tokens: [] });
      }
      flush();
    } else if (isSpecial(tok, ":") && !group && current.length > 0) {
      const nameTokens = current.filter((t) => t.type !== "comment");
      const name = nameTokens.length
        ? value.slice(nameTokens[0].start, nameTokens[nameTokens.length - 1].end)
        : "";
      group = { kind: "group", name, members: [], nameTokens };
      entries.push(group);
      current = [];
    } else if (isSpecial(tok, ";") && group) {
      flush();
      group = null;
    } else {
      current.push(tok);
    }
    if (tok.type !== "comment") prev = tok;
  }
  flush();
  return entries;
}

/** Every mailbox of a list, group members included, in order. */
export function listMailboxes(entries: ListEntry[]): Mailbox[] {
  return entries.flatMap((e) => e.kind === "group" ? e.members : e.kind === "mailbox" ? [e] : []);
}

/** The internal-form addresses of a header value (what sendmail -t and cleanup extract). */
export function extractAddresses(value: string, options: ParseOptions = {}): string[] {
  return listMailboxes(parseAddressList(value, options)).map((m) => m.address);
}

/**
 * Prints one mailbox as tok822 does, with its address in external form. An
 * obsolete source route is not printed (RFC 5321 C: it is to be ignored).
 */
export function formatMailbox(box: Mailbox): string {
  const addr: Token = { type: "atom", text: quoteAddress(box.address), start: 0, end: 0 };
  return joinTokens([...box.before, addr, ...box.after]);
}

/**
 * The printed elements of a list, each with the separator that follows it
 * (`,` between elements, `;` closing a group), ready to be joined with
 * spaces or folded onto several lines.
 */
export function formatAddressPieces(entries: ListEntry[]): string[] {
  const pieces: string[] = [];
  entries.forEach((e, i) => {
    const comma = i < entries.length - 1 ? "," : "";
    if (e.kind === "mailbox") {
      pieces.push(formatMailbox(e) + comma);
    } else if (e.kind === "empty") {
      pieces.push(joinTokens(e.tokens) + comma);
    } else if (e.members.length === 0) {
      pieces.push(`${joinTokens(e.nameTokens)}:;${comma}`);
    } else {
      e.members.forEach((m, j) => {
        const head = j === 0 ? `${joinTokens(e.nameTokens)}: ` : "";
        const tail = j === e.members.length - 1 ? `;${comma}` : ",";
        pieces.push(head + formatMailbox(m) + tail);
      });
    }
  });
  return pieces.filter((p) => p !== "");
}

/**
 * Prints an address list on one line, or with each element after the first
 * on a continuation line when `fold` is set.
 */
export function formatAddressList(entries: ListEntry[], fold = true): string {
  return formatAddressPieces(entries).join(fold ? "\n\t" : " ");
}

/** The display name to use as a full name: the phrase, else the first comment. */
export function fullName(box: Mailbox): string {
  if (box.phrase) {
    const tokens = scanTokens(box.phrase);
    return tokens.map((t) => t.text).join(" ").replace(/ \. /g, ". ").replace(/ \.$/, ".");
  }
  return box.comments[0] ?? "";
}

/** Quotes a display name when it holds specials (for headers cleanup writes). */
export function formatPhrase(name: string): string {
  return /[()<>@,;:\\".[\]]/.test(name) ? quoteString(name) : name;
}
