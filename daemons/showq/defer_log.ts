// The per-message defer log (defer/ID), as the bounce service writes it:
// one block per recipient, blocks separated by empty lines, each holding
// `name=value` lines (recipient, offset, dsn_orig_rcpt, status, action,
// reason, ...). Blocks may open with a `<recipient>: reason` line, the older
// form, which is read when a block has no attributes.

/** One logged recipient and the reason its delivery was deferred. */
export interface DeferLogEntry {
  recipient: string;
  reason: string;
}

/** The entries of the defer log at `path`, in file order; [] when there is none. */
export function readDeferLog(path: string): DeferLogEntry[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return [];
  }
  return parseDeferLog(text);
}

/** Parses defer log text; blocks without a recipient are skipped. */
export function parseDeferLog(text: string): DeferLogEntry[] {
  const entries: DeferLogEntry[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const attrs = new Map<string, string>();
    let old: DeferLogEntry | undefined;
    for (const line of block.split("\n")) {
      const m = /^<(.*)>: (.*)$/.exec(line);
      if (m) {
        old = { recipient: m[1], reason: m[2] };
        continue;
      }
      const eq = line.indexOf("=");
      if (eq > 0) attrs.set(line.slice(0, eq), line.slice(eq + 1));
    }
    if (attrs.has("recipient")) {
      // Postfix's wording for an entry that gives no reason.
      const reason = attrs.get("reason") || "(description unavailable)";
      entries.push({ recipient: attrs.get("recipient")!, reason });
    } else if (old) {
      entries.push(old);
    }
  }
  return entries;
}
