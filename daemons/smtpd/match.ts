// Postfix host/address match lists (mynetworks, smtpd_authorized_xclient_hosts,
// smtpd_client_event_limit_exceptions): network/mask, bare addresses, host and
// domain names, type:table lookups, /file/name lists and !negation, first
// match wins.

import { maskAddress, parseIP, samePrefix } from "../../maps/ip.ts";
import { type Dict, openMap } from "../../maps/mod.ts";

/** A compiled host match list. */
export interface HostList {
  /** Whether the client (name, address) matches. */
  matches(name: string, addr: string): Promise<boolean>;
}

type Matcher = (name: string, addr: string) => Promise<boolean> | boolean;

/** Compiles a list; `parentMatches` is parent_domain_matches_subdomains membership. */
export function hostList(items: string[], parentMatches = true): HostList {
  const matchers: { negate: boolean; m: Matcher }[] = [];
  for (const raw of expandFiles(items)) {
    let item = raw;
    let negate = false;
    while (item.startsWith("!")) {
      negate = !negate;
      item = item.slice(1);
    }
    matchers.push({ negate, m: compile(item, parentMatches) });
  }
  return {
    async matches(name, addr) {
      for (const { negate, m } of matchers) if (await m(name, addr)) return !negate;
      return false;
    },
  };
}

/** Replaces /file/name entries with the file's words. */
function expandFiles(items: string[]): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (item.startsWith("/")) {
      try {
        const text = Deno.readTextFileSync(item);
        for (const line of text.split("\n")) {
          const words = line.replace(/#.*/, "").split(/[\s,]+/).filter(Boolean);
          out.push(...words);
        }
      } catch {
        // A missing file matches nothing, as an empty list would.
      }
    } else out.push(item);
  }
  return out;
}

function compile(item: string, parentMatches: boolean): Matcher {
  const colon = item.indexOf(":");
  if (colon > 0 && /^[a-z_]+$/.test(item.slice(0, colon)) && !item.startsWith("[")) {
    let table: Dict | undefined;
    return async (name, addr) => {
      table ??= openMap(item);
      return (await table.lookup(addr)) !== undefined ||
        (name !== "" && (await table.lookup(name.toLowerCase())) !== undefined);
    };
  }
  const net = parseNetwork(item);
  if (net) {
    return (_name, addr) => {
      const a = parseIP(addr.replace(/^ipv6:/i, ""));
      return !!a && a.length === net.addr.length && samePrefix(a, net.addr, net.bits);
    };
  }
  const pattern = item.toLowerCase();
  return (name) => {
    const n = name.toLowerCase();
    if (!n || n === "unknown") return false;
    if (n === pattern) return true;
    if (pattern.startsWith(".")) return n.endsWith(pattern);
    return parentMatches && n.endsWith("." + pattern);
  };
}

/** "1.2.3.0/24", "[2001:db8::]/32", "1.2.3.4", "[::1]". */
function parseNetwork(item: string): { addr: Uint8Array; bits: number } | undefined {
  const m = /^\[?([0-9a-fA-F:.]+)\]?(?:\/(\d+))?$/.exec(item);
  if (!m) return undefined;
  const addr = parseIP(m[1]);
  if (!addr) return undefined;
  const bits = m[2] === undefined ? addr.length * 8 : Number(m[2]);
  return { addr: maskAddress(addr, bits), bits };
}
