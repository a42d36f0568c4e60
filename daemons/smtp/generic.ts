// smtp_generic_maps (generic(5)): outgoing addresses replaced by the
// table's result, looked up in canonical(5) order (user@domain, user for a
// local domain, @domain), as smtp(8) does for the envelope (MAIL FROM, RCPT
// TO) and for the addresses in the message's address headers. Envelope
// addresses go out in RFC 5321 external (quoted) form.

import type { Config } from "../../lib/config/mod.ts";
import {
  formatAddressPieces,
  listMailboxes,
  parseAddressList,
  quoteAddress,
  unquoteAddress,
} from "../../lib/address/mod.ts";
import type { MessageContent, MessageLine } from "../../lib/deliver/message.ts";
import { openMap } from "../../maps/mod.ts";
import { addressMapSettings, searchCanonical } from "../../maps/search.ts";
import { warn } from "../../lib/log.ts";

/** The generic mapping of one process. */
export interface GenericMapper {
  /** From an internal-form envelope address to the external form sent. */
  envelope(address: string): Promise<string>;
  /** The content with address headers rewritten (the same object when nothing changed). */
  headers(content: MessageContent): Promise<MessageContent>;
}

/** The headers whose addresses generic(5) rewrites (Postfix's address headers). */
const ADDRESS_HEADERS = new Set([
  "from",
  "sender",
  "reply-to",
  "to",
  "cc",
  "bcc",
  "apparently-to",
  "resent-from",
  "resent-sender",
  "resent-reply-to",
  "resent-to",
  "resent-cc",
  "resent-bcc",
  "return-receipt-to",
  "errors-to",
  "disposition-notification-to",
  "return-path",
]);

/** The mapper for `tables` (a list of type:name); without tables, only quoting. */
export function genericMapper(config: Config, tables: string[]): GenericMapper {
  const quote = (a: string) => (a === "" ? "" : quoteAddress(a));
  if (!tables.length) {
    return { envelope: (a) => Promise.resolve(quote(a)), headers: (c) => Promise.resolve(c) };
  }
  const dicts = tables.map((spec) => openMap(spec, { cwd: config.configDir }));
  const names = new Set(
    [config.get("myorigin"), ...config.list("mydestination")].map((s) => s.toLowerCase()),
  );
  const settings = addressMapSettings(config, "generic", (d) => names.has(d.toLowerCase()));
  const map = async (address: string): Promise<string | undefined> => {
    const external = quote(address);
    try {
      return (await searchCanonical(dicts, external, settings))?.value;
    } catch (err) {
      warn(`${tables.join(", ")}: lookup of ${external}: ${(err as Error).message}`);
      return undefined;
    }
  };
  return {
    envelope: async (address) => {
      if (address === "") return "";
      return (await map(address)) ?? quote(address);
    },
    headers: (content) => rewriteHeaders(content, map),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

/** Rewrites the addresses of address headers; untouched headers keep their bytes. */
async function rewriteHeaders(
  content: MessageContent,
  map: (address: string) => Promise<string | undefined>,
): Promise<MessageContent> {
  const out: MessageLine[] = [];
  let changed = false;
  const h = content.header;
  for (let i = 0; i < h.length;) {
    // One logical header: the line and its continuation lines.
    let j = i + 1;
    while (j < h.length && (h[j][0] === 0x20 || h[j][0] === 0x09)) j++;
    const lines = h.slice(i, j);
    i = j;
    const rewritten = await rewriteHeader(lines, map);
    if (rewritten) {
      changed = true;
      out.push(...rewritten);
    } else out.push(...lines);
  }
  return changed ? { ...content, header: out } : content;
}

async function rewriteHeader(
  lines: MessageLine[],
  map: (address: string) => Promise<string | undefined>,
): Promise<MessageLine[] | undefined> {
  let text: string;
  try {
    text = lines.map((l) => utf8.decode(l)).join("\n");
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  if (colon <= 0 || !ADDRESS_HEADERS.has(text.slice(0, colon).trim().toLowerCase())) {
    return undefined;
  }
  const entries = parseAddressList(text.slice(colon + 1));
  let changed = false;
  for (const box of listMailboxes(entries)) {
    const value = await map(box.address);
    if (value === undefined) continue;
    box.address = unquoteAddress(value.trim());
    changed = true;
  }
  if (!changed) return undefined;
  const printed = foldHeader(`${text.slice(0, colon)}:`, formatAddressPieces(entries));
  return printed.split("\n").map((l) => enc.encode(l));
}

/** Line width address headers are folded at, as Postfix's rewritten headers are. */
const FOLD_WIDTH = 70;

/** The label and address pieces on one line, folded before a piece that would pass the width. */
function foldHeader(label: string, pieces: string[]): string {
  let text = label;
  let line = label.length;
  pieces.forEach((piece, i) => {
    if (i > 0 && line + 1 + piece.length >= FOLD_WIDTH) {
      text += "\n\t" + piece;
      line = 1 + piece.length;
    } else {
      text += " " + piece;
      line += 1 + piece.length;
    }
  });
  return text;
}
