// cidr: tables, as cidr_table(5): `network/prefix result`, `address result`
// and `!pattern result` lines for IPv4 and IPv6 (an IPv6 pattern may be in
// brackets), with `if pattern` ... `endif` blocks. The first match wins; an
// IPv4 pattern never matches an IPv6 key and the other way round.

import { type OpenOptions, ReadOnlyDict, readTableFile, resolvePath } from "./dict.ts";
import { logicalLines } from "./source.ts";
import { formatIP, maskAddress, parseIP, samePrefix } from "./ip.ts";
import { warn } from "../lib/log.ts";

interface CidrRule {
  kind: "match" | "if" | "endif";
  net?: Uint8Array;
  bits?: number;
  negated?: boolean;
  result?: string;
  end?: number;
}

class SkipRule extends Error {}

/** Opens a cidr: table from its file. */
export function openCidr(name: string, options: OpenOptions = {}): CidrDict {
  const text = readTableFile(resolvePath(name, options.cwd));
  return new CidrDict(name, parseCidrRules(name, text), options);
}

/** A loaded cidr table. */
export class CidrDict extends ReadOnlyDict {
  constructor(name: string, private rules: CidrRule[], options: OpenOptions) {
    super("cidr", name, { ...options.flags, foldFix: false });
  }

  lookup(key: string): Promise<string | undefined> {
    return Promise.resolve(this.lookupSync(key));
  }

  /** The result of the first rule that matches address `key`. */
  lookupSync(key: string): string | undefined {
    const addr = parseIP(key);
    if (!addr) return undefined;
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (r.kind === "endif") continue;
      const inNet = r.net!.length === addr.length && samePrefix(addr, r.net!, r.bits!);
      // A negated pattern still needs the same address family to match.
      const hit = r.net!.length === addr.length && (r.negated ? !inNet : inNet);
      if (r.kind === "if") {
        if (!hit) i = r.end!;
        continue;
      }
      if (hit) return r.result;
    }
    return undefined;
  }
}

/** Parses `[!]address[/bits]` (IPv6 optionally in brackets). */
function parsePattern(text: string): { net: Uint8Array; bits: number; negated: boolean } {
  let negated = false;
  let p = text;
  while (p.startsWith("!")) {
    negated = !negated;
    p = p.slice(1);
  }
  const slash = p.indexOf("/");
  let addrText = slash < 0 ? p : p.slice(0, slash);
  const bitsText = slash < 0 ? undefined : p.slice(slash + 1);
  if (addrText.startsWith("[") && addrText.endsWith("]")) addrText = addrText.slice(1, -1);
  const addr = parseIP(addrText);
  if (!addr) throw new SkipRule(`bad address pattern: "${text}": skipping this rule`);
  const max = addr.length * 8;
  let bits = max;
  if (bitsText !== undefined) {
    if (!/^\d+$/.test(bitsText) || Number(bitsText) > max) {
      throw new SkipRule(`bad mask length in "${text}": skipping this rule`);
    }
    bits = Number(bitsText);
  }
  const net = maskAddress(addr, bits);
  if (!samePrefix(net, addr, max)) {
    const better = `${formatIP(net)}/${bits}`;
    throw new SkipRule(
      `non-null host address bits in "${text}", perhaps you should use "${better}" instead: skipping this rule`,
    );
  }
  return { net, bits, negated };
}

function parseCidrRules(file: string, text: string): CidrRule[] {
  const rules: CidrRule[] = [];
  const open: { index: number; lineno: number }[] = [];
  for (const line of logicalLines(text, file, warn)) {
    const here = `cidr map ${file}, line ${line.lineno}`;
    try {
      const [first, ...restWords] = line.text.split(/\s+/);
      const word = first.toLowerCase();
      if (word === "endif") {
        if (!open.length) throw new SkipRule("ENDIF without IF: skipping this rule");
        rules[open.pop()!.index].end = rules.length;
        rules.push({ kind: "endif" });
        continue;
      }
      if (word === "if") {
        const pat = parsePattern(restWords[0] ?? "");
        open.push({ index: rules.length, lineno: line.lineno });
        rules.push({ kind: "if", ...pat });
        continue;
      }
      const pat = parsePattern(first);
      const result = line.text.slice(first.length).trim();
      if (result === "") throw new SkipRule(`no lookup result: skipping this rule`);
      rules.push({ kind: "match", ...pat, result });
    } catch (err) {
      if (!(err instanceof SkipRule)) throw err;
      warn(`${here}: ${err.message}`);
    }
  }
  for (const o of open) {
    warn(`cidr map ${file}, line ${o.lineno}: IF has no matching ENDIF`);
    rules[o.index].end = rules.length;
  }
  return rules;
}
