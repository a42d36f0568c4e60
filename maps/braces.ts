// The `{ item, item, { item with spaces } }` lists that inline:, randmap:,
// unionmap: and pipemap: take as their table name.

import { DictError } from "./dict.ts";

/** Whether `text` is wrapped in one pair of braces. */
export function isBraced(text: string): boolean {
  return text.startsWith("{") && text.endsWith("}");
}

/**
 * Splits the inside of `{ ... }` on commas and whitespace outside nested
 * braces; a `{ ... }` item loses its braces and surrounding whitespace.
 * Throws DictError with `what` when the braces do not balance.
 */
export function splitBraced(text: string, what: string): string[] {
  if (!isBraced(text)) throw new DictError(`bad syntax: "${what}"`);
  const inner = text.slice(1, -1);
  const items: string[] = [];
  let i = 0;
  while (i < inner.length) {
    while (i < inner.length && /[\s,]/.test(inner[i])) i++;
    if (i >= inner.length) break;
    const start = i;
    let depth = 0;
    while (i < inner.length) {
      const c = inner[i];
      if (c === "{") depth++;
      else if (c === "}") {
        if (--depth < 0) throw new DictError(`bad syntax: "${what}"`);
      } else if (depth === 0 && /[\s,]/.test(c)) break;
      i++;
    }
    if (depth !== 0) throw new DictError(`bad syntax: "${what}"`);
    let item = inner.slice(start, i);
    if (isBraced(item)) item = item.slice(1, -1).trim();
    items.push(item);
  }
  return items;
}
