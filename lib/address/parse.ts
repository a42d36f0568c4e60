// RFC 5322 address lists in header values (From:, To:, Cc:, Resent-*, ...)
// parsed into mailboxes and groups, the way Postfix's tok822 parser does:
// display names, comments, groups, quoted strings, angle addresses and
// obsolete source routes. Nothing is rejected: a missing `>` or `;` is
// supplied, an empty element is skipped, tokens past the limit are ignored.
// The parsed list can be printed again after its addresses were rewritten.

import { quoteAddress, quoteString } from "./quote.ts";
import { scanTokens, type Token } from "./tokens.ts";

/** One address of a list: `phrase <route:addr> (comment)` or `addr (comment)`. */
export interface Mailbox {
  kind: "mailbox";
  /** The address in internal form (local part unquoted, no route). */
  address: string;
  /** The display name as written (between the list's separators), "" when none. */
  phrase: string;
  /** The comments around the mailbox, their content without parentheses. */
  comments: string[];
  /** Whether the address was in angle brackets. */
  angle: boolean;
  /** The obsolete source route (`@a,@b`) that preceded the address, "" when none. */
  route: string;
}

/** A named group: `name: mailbox, mailbox;`. */
export interface Group {
  kind: "group";
  /** The group's display name as written. */
  name: string;
  members: Mailbox[];
}

/** An element of an address list. */
export type ListEntry = Mailbox | Group;

/** Options for parseAddressList(). */
export interface ParseOptions {
  /** header_address_token_limit: tokens past it are ignored. */
  tokenLimit?: number;
}

/** The internal form of the tokens of an addr-spec (Postfix's tok822_internalize). */
function tokensToAddress(tokens: Token[]): string {
  let out = "";
  let prevWord = false;
  for (const tok of tokens) {
    const word = tok.type === "atom" || tok.type === "qstring";
    // Two words in a row (`foo bar`) keep one space, as the text had.
    if (word && prevWord) out += " ";
    out += tok.text;
    prevWord = word;
  }
  return out;
}

/** Splits an obsolete route (`@a,@b:`) from the front of angle-address tokens. */
function splitRoute(tokens: Token[]): [string, Token[]] {
  if (tokens.length === 0 || tokens[0].text !== "@" || tokens[0].type !== "special") {
    return ["", tokens];
  }
  const colon = tokens.findIndex((t) => t.type === "special" && t.text === ":");
  if (colon < 0) return ["", tokens];
  return [tokens.slice(0, colon).map((t) => t.text).join(""), tokens.slice(colon + 1)];
}

/** Collects the tokens of one list element into a mailbox, or null when empty. */
function makeMailbox(source: string, tokens: Token[]): Mailbox | null {
  const comments = tokens.filter((t) => t.type === "comment").map((t) => t.text);
  const words = tokens.filter((t) => t.type !== "comment");
  const open = words.findIndex((t) => t.type === "special" && t.text === "<");
  if (open < 0) {
    if (words.length === 0) return null;
    return {
      kind: "mailbox",
      address: tokensToAddress(words),
      phrase: "",
      comments,
      angle: false,
      route: "",
    };
  }
  let close = words.findIndex((t, i) => i > open && t.type === "special" && t.text === ">");
  if (close < 0) close = words.length;
  const phraseTokens = words.slice(0, open);
  const phrase = phraseTokens.length
    ? source.slice(phraseTokens[0].start, phraseTokens[phraseTokens.length - 1].end)
    : "";
  const [route, addr] = splitRoute(words.slice(open + 1, close));
  return { kind: "mailbox", address: tokensToAddress(addr), phrase, comments, angle: true, route };
}

/** Parses a header value holding an address list. */
export function parseAddressList(value: string, options: ParseOptions = {}): ListEntry[] {
  const tokens = scanTokens(value, options.tokenLimit ?? Infinity);
  const entries: ListEntry[] = [];
  let group: Group | null = null;
  let current: Token[] = [];
  let inAngle = false;

  const flush = () => {
    const box = makeMailbox(value, current);
    current = [];
    if (!box) return;
    if (group) group.members.push(box);
    else entries.push(box);
  };

  for (const tok of tokens) {
    const special = tok.type === "special" ? tok.text : "";
    if (inAngle) {
      current.push(tok);
      if (special === ">") inAngle = false;
    } else if (special === "<") {
      inAngle = true;
      current.push(tok);
    } else if (special === ",") {
      flush();
    } else if (special === ":" && !group) {
      const words = current.filter((t) => t.type !== "comment");
      const name = words.length ? value.slice(words[0].start, words[words.length - 1].end) : "";
      group = { kind: "group", name, members: [] };
      entries.push(group);
      current = [];
    } else if (special === ";" && group) {
      flush();
      group = null;
    } else {
      current.push(tok);
    }
  }
  flush();
  return entries;
}

/** Every mailbox of a list, group members included, in order. */
export function listMailboxes(entries: ListEntry[]): Mailbox[] {
  return entries.flatMap((e) => e.kind === "group" ? e.members : [e]);
}

/** The internal-form addresses of a header value (what sendmail -t and cleanup extract). */
export function extractAddresses(value: string, options: ParseOptions = {}): string[] {
  return listMailboxes(parseAddressList(value, options)).map((m) => m.address);
}

/**
 * Prints one mailbox; the address is quoted as its external form requires.
 * An obsolete source route is not printed (RFC 5321 C: it is to be ignored).
 */
export function formatMailbox(box: Mailbox): string {
  const comments = box.comments.map((c) => ` (${c})`).join("");
  const address = quoteAddress(box.address);
  if (!box.angle) return address + comments;
  return (box.phrase ? box.phrase + " " : "") + `<${address}>` + comments;
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
      return;
    }
    if (e.members.length === 0) {
      pieces.push(`${e.name}:;${comma}`);
      return;
    }
    e.members.forEach((m, j) => {
      const text = formatMailbox(m);
      const head = j === 0 ? `${e.name}: ` : "";
      const tail = j === e.members.length - 1 ? `;${comma}` : ",";
      pieces.push(head + text + tail);
    });
  });
  return pieces;
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
