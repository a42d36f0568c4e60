// The argv= macros of pipe(8): $name, ${name}, $(name) and $$, replaced
// with facts of the delivery request. An argument that names a recipient
// macro (${recipient}, ${original_recipient}, ${user}, ${extension},
// ${mailbox}, ${domain}) becomes one argument per recipient. The h, q and
// u flags fold or quote the addresses first. Values are not expanded again:
// an address with a `$` in it stays as it is.

import { quoteAddress, splitAddress } from "../../lib/address/quote.ts";
import { PipeFlag } from "./attributes.ts";

/** Macros whose value differs per recipient. */
export const recipientMacros = new Set([
  "recipient",
  "original_recipient",
  "user",
  "extension",
  "mailbox",
  "domain",
]);

/** Macros the same for every recipient of a request. */
export const requestMacros = new Set([
  "sender",
  "nexthop",
  "size",
  "queue_id",
  "client_address",
  "client_helo",
  "client_hostname",
  "client_port",
  "client_protocol",
  "sasl_method",
  "sasl_sender",
  "sasl_username",
]);

/** A macro mistake in argv=: Postfix's warning text. */
export class PipeMacroError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PipeMacroError";
  }
}

/**
 * One piece of an argument: literal text, or a macro name with, for the
 * conditional forms ${name?text} and ${name:text}, the operator and text.
 */
type Piece = { text: string } | { macro: string; op?: "?" | ":"; alt?: string };

/** The index of the bracket closing the one at `open`, nesting respected; -1 if none. */
function closingBracket(arg: string, open: number): number {
  const o = arg[open];
  const c = o === "{" ? "}" : ")";
  let depth = 0;
  for (let i = open; i < arg.length; i++) {
    if (arg[i] === o) depth++;
    else if (arg[i] === c && --depth === 0) return i;
  }
  return -1;
}

/** Splits an argument into literal text and macro references. */
export function parseArgument(arg: string): Piece[] {
  const pieces: Piece[] = [];
  let text = "";
  for (let i = 0; i < arg.length; i++) {
    const ch = arg[i];
    if (ch !== "$") {
      text += ch;
      continue;
    }
    const next = arg[i + 1];
    if (next === "$") {
      text += "$";
      i++;
      continue;
    }
    let name: string;
    let cond: { op: "?" | ":"; alt: string } | undefined;
    if (next === "{" || next === "(") {
      const end = closingBracket(arg, i + 1);
      if (end < 0) throw new PipeMacroError(`truncated macro reference: "${arg.slice(i)}"`);
      name = arg.slice(i + 2, end);
      const m = /^([A-Za-z0-9_]+)([?:])(.*)$/s.exec(name);
      if (m) {
        name = m[1];
        const alt = m[3].startsWith("{") && m[3].endsWith("}") ? m[3].slice(1, -1) : m[3];
        cond = { op: m[2] as "?" | ":", alt };
      }
      i = end;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(arg.slice(i + 1));
      if (!m) {
        // A lone `$` is kept, as Postfix's macro parser keeps it.
        text += "$";
        continue;
      }
      name = m[0];
      i += name.length;
    }
    if (text) pieces.push({ text });
    text = "";
    pieces.push(cond ? { macro: name, ...cond } : { macro: name });
  }
  if (text) pieces.push({ text });
  return pieces;
}

/** What the macros expand to for one request. */
export interface MacroSource {
  flags: Set<string>;
  sender: string;
  nullSender: string;
  nexthop: string;
  size: number;
  queueId: string;
  /** The request's attributes (log_client_address, sasl_method, ...). */
  attrs: Record<string, string>;
  /** recipient_delimiter: the characters that start an extension. */
  delimiters: string;
}

/** One recipient's addresses. */
export interface MacroRecipient {
  address: string;
  origRcpt: string;
}

/** Folds an address as the h and u flags ask: domain and local part apart. */
function foldAddress(address: string, flags: Set<string>): string {
  const { local, domain, hasAt } = splitAddress(address);
  const l = flags.has(PipeFlag.FOLD_USER) ? local.toLowerCase() : local;
  const d = flags.has(PipeFlag.FOLD_HOST) ? domain.toLowerCase() : domain;
  return hasAt ? `${l}@${d}` : l;
}

/** The address for the command line: folded, then quoted with q. */
function commandAddress(address: string, flags: Set<string>): string {
  const folded = foldAddress(address, flags);
  return flags.has(PipeFlag.QUOTE) ? quoteAddress(folded) : folded;
}

/** Splits a local part at the first recipient delimiter (not at its first character). */
export function splitExtension(
  local: string,
  delimiters: string,
): { user: string; extension: string } {
  if (!delimiters) return { user: local, extension: "" };
  for (let i = 1; i < local.length; i++) {
    if (delimiters.includes(local[i])) {
      return { user: local.slice(0, i), extension: local.slice(i + 1) };
    }
  }
  return { user: local, extension: "" };
}

function requestValue(name: string, src: MacroSource): string {
  const a = src.attrs;
  switch (name) {
    case "sender": {
      if (src.sender === "") {
        // An empty replacement is passed as is; a non-empty one is quoted like an address.
        return src.nullSender && src.flags.has(PipeFlag.QUOTE)
          ? quoteAddress(src.nullSender)
          : src.nullSender;
      }
      return src.flags.has(PipeFlag.QUOTE) ? quoteAddress(src.sender) : src.sender;
    }
    case "nexthop":
      return src.flags.has(PipeFlag.FOLD_HOST) ? src.nexthop.toLowerCase() : src.nexthop;
    case "size":
      return String(src.size);
    case "queue_id":
      return src.queueId;
    case "client_address":
      return a.log_client_address ?? a.client_address ?? "";
    case "client_helo":
      return a.log_helo_name ?? a.helo_name ?? "";
    case "client_hostname":
      return a.log_client_name ?? a.client_name ?? "";
    case "client_port":
      return a.log_client_port ?? a.client_port ?? "";
    case "client_protocol":
      return a.log_protocol_name ?? a.protocol_name ?? "";
    default:
      // sasl_method, sasl_sender, sasl_username.
      return a[name] ?? "";
  }
}

function recipientValue(name: string, rcpt: MacroRecipient, src: MacroSource): string {
  const flags = src.flags;
  switch (name) {
    case "recipient":
      return commandAddress(rcpt.address, flags);
    case "original_recipient":
      return commandAddress(rcpt.origRcpt || rcpt.address, flags);
    case "domain": {
      const { domain } = splitAddress(rcpt.address);
      return flags.has(PipeFlag.FOLD_HOST) ? domain.toLowerCase() : domain;
    }
  }
  let { local } = splitAddress(rcpt.address);
  if (flags.has(PipeFlag.FOLD_USER)) local = local.toLowerCase();
  if (name === "mailbox") return local;
  const parts = splitExtension(local, src.delimiters);
  return name === "user" ? parts.user : parts.extension;
}

/**
 * Expands argv= for one request: every argument once, or once per
 * recipient when it names a recipient macro. Throws PipeMacroError for an
 * unknown macro or a truncated reference.
 */
export function expandArgv(
  argv: string[],
  src: MacroSource,
  recipients: MacroRecipient[],
): string[] {
  const out: string[] = [];
  for (const arg of argv) {
    const pieces = parseArgument(arg);
    let perRecipient = false;
    for (const p of pieces) {
      if (!("macro" in p)) continue;
      if (recipientMacros.has(p.macro)) perRecipient = true;
      else if (!requestMacros.has(p.macro)) {
        throw new PipeMacroError(`unknown macro name: "${p.macro}"`);
      }
    }
    const render = (rcpt?: MacroRecipient) =>
      pieces.map((p) => {
        if ("text" in p) return p.text;
        const value = recipientMacros.has(p.macro)
          ? recipientValue(p.macro, rcpt!, src)
          : requestValue(p.macro, src);
        if (p.op === "?") return value ? p.alt! : "";
        if (p.op === ":") return value ? "" : p.alt!;
        return value;
      }).join("");
    if (perRecipient) { for (const r of recipients) out.push(render(r)); }
    else out.push(render());
  }
  return out;
}
