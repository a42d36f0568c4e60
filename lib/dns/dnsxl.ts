// DNS allow/block list queries (postconf(5) reject_rbl_client and friends):
// the query name for an address (reversed octets, or IPv6 nibbles) or a
// domain under a list's domain, the "=d.d.d.d" reply filter with its
// "[n;m..k]" byte patterns, and the lookup itself (A, then TXT for the reason).

import { normalizeAddress, strictHostname } from "./address.ts";
import { type Resolver, reverseName } from "./mod.ts";

/** A list site as written after the restriction: `domain` or `domain=pattern`. */
export interface DnsxlSite {
  domain: string;
  filter?: string;
}

/** Splits `zen.example=127.0.0.[2..11]` into the domain and the reply filter. */
export function parseDnsxlSite(text: string): DnsxlSite {
  const eq = text.indexOf("=");
  if (eq < 0) return { domain: text.replace(/\.$/, "") };
  return { domain: text.slice(0, eq).replace(/\.$/, ""), filter: text.slice(eq + 1) };
}

/** Thrown for a reply filter that is not a valid byte pattern. */
export class DnsxlPatternError extends Error {}

/**
 * Whether an A record address matches a reply filter: four byte fields,
 * each a number or `[` `;`-separated numbers or `n..m` ranges `]`.
 */
export function matchReplyFilter(filter: string, address: string): boolean {
  const fields = parseFilter(filter);
  const octets = address.split(".").map(Number);
  if (octets.length !== 4) return false;
  return fields.every((allowed, i) =>
    allowed.some(([lo, hi]) => octets[i] >= lo && octets[i] <= hi)
  );
}

function parseFilter(filter: string): Array<Array<[number, number]>> {
  const fields: Array<Array<[number, number]>> = [];
  let rest = filter;
  while (rest.length) {
    if (fields.length) {
      if (!rest.startsWith(".")) throw new DnsxlPatternError(`bad address pattern: ${filter}`);
      rest = rest.slice(1);
    }
    if (rest.startsWith("[")) {
      const end = rest.indexOf("]");
      if (end < 0) throw new DnsxlPatternError(`missing "]" in address pattern: ${filter}`);
      const ranges: Array<[number, number]> = [];
      for (const part of rest.slice(1, end).split(";")) {
        const m = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(part);
        if (!m) throw new DnsxlPatternError(`bad address pattern: ${filter}`);
        const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
        if (lo > 255 || hi > 255 || lo > hi) {
          throw new DnsxlPatternError(`bad address pattern: ${filter}`);
        }
        ranges.push([lo, hi]);
      }
      fields.push(ranges);
      rest = rest.slice(end + 1);
    } else {
      const m = /^\d{1,3}/.exec(rest);
      if (!m || Number(m[0]) > 255) throw new DnsxlPatternError(`bad address pattern: ${filter}`);
      fields.push([[Number(m[0]), Number(m[0])]]);
      rest = rest.slice(m[0].length);
    }
  }
  if (fields.length !== 4) throw new DnsxlPatternError(`bad address pattern: ${filter}`);
  return fields;
}

/** The query name for a client address under a list domain (undefined for a non-address). */
export function addressQuery(address: string, domain: string): string | undefined {
  const canon = normalizeAddress(address);
  if (!canon) return undefined;
  const suffix = canon.includes(":") ? ".ip6.arpa" : ".in-addr.arpa";
  return `${reverseName(canon).slice(0, -suffix.length)}.${domain}`;
}

/**
 * The query name for a domain (or the domain of an address) under a list
 * domain. Undefined where Postfix skips the lookup: address literals,
 * invalid names, and names whose last label is numeric.
 */
export function domainQuery(what: string, domain: string): string | undefined {
  const at = what.lastIndexOf("@");
  const name = at >= 0 ? what.slice(at + 1) : what;
  if (name === "" || name.startsWith("[") || !strictHostname(name)) return undefined;
  const last = name.slice(name.lastIndexOf(".") + 1);
  if (/^\d+$/.test(last)) return undefined;
  return `${name}.${domain}`;
}

/** The outcome of one list lookup. */
export interface DnsxlAnswer {
  status: "listed" | "unlisted" | "tempfail";
  /** TXT records joined with " / " (at most 500 characters), or "". */
  txt: string;
  /** For a tempfail: Postfix's description of the failure. */
  why?: string;
}

/** Postfix's limit on the collected TXT text. */
const TXT_LIMIT = 500;

/** Looks a query name up: listed when an A record (matching the filter) exists. */
export async function lookupDnsxl(
  resolver: Resolver,
  query: string,
  filter?: string,
): Promise<DnsxlAnswer> {
  if (filter !== undefined) parseFilter(filter); // a bad pattern is a configuration error
  const a = await resolver.query(query, "A");
  if (a.status === "tempfail") {
    return {
      status: "tempfail",
      txt: "",
      why:
        `Host or domain name not found. Name service error for name=${query} type=A: ${a.reason}`,
    };
  }
  if (a.status !== "ok") return { status: "unlisted", txt: "" };
  if (filter !== undefined && !a.records.some((r) => matchReplyFilter(filter, r.value))) {
    return { status: "unlisted", txt: "" };
  }
  const txt = await resolver.query(query, "TXT");
  let text = "";
  if (txt.status === "ok") {
    for (let i = 0; i < txt.records.length && text.length < TXT_LIMIT; i++) {
      text += txt.records[i].value.slice(0, TXT_LIMIT - text.length);
      if (i + 1 < txt.records.length && TXT_LIMIT - text.length > 3) text += " / ";
    }
  }
  return { status: "listed", txt: text };
}
