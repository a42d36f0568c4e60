// The domain lists the resolver matches a recipient domain against, as
// Postfix's string_list and domain_list: names compared without regard to
// case, `type:table` entries looked up, `/file/name` entries read as more
// patterns, `!pattern` negating, first match wins. A domain list (relay_domains)
// also matches subdomains: `.example.com` always, `example.com` when the
// parameter is named in parent_domain_matches_subdomains. resolve_local adds
// the `[address]` forms of inet_interfaces and proxy_interfaces.

import type { Config } from "../../lib/config/mod.ts";
import { splitList } from "../../lib/config/mod.ts";
import { type Dict, DictError, openMap } from "../../maps/mod.ts";
import type { TableWatch } from "./watch.ts";
import { warn } from "../../lib/log.ts";

/** What a list answers: matched, not matched, or a table failed (Postfix's list->error). */
export type MatchResult = "match" | "none" | "error";

/** One compiled list. */
export interface DomainList {
  readonly name: string;
  readonly empty: boolean;
  match(domain: string): Promise<MatchResult>;
}

interface Pattern {
  negate: boolean;
  text: string;
  table?: Dict;
}

/** Compiles the value of parameter `name` (tables opened now; DictError when one cannot be). */
export function compileDomainList(
  config: Config,
  name: string,
  value: string,
  subdomains: "parent" | "none",
  watch?: TableWatch,
): DomainList {
  const parentStyle = subdomains === "parent" &&
    config.list("parent_domain_matches_subdomains").includes(name);
  const patterns = expandPatterns(config, splitList(value), watch);
  const listName = name;
  const match = async (domain: string): Promise<MatchResult> => {
    const name = domain.toLowerCase();
    for (const p of patterns) {
      let hit: boolean;
      try {
        hit = p.table
          ? await matchTable(p.table, name, subdomains === "parent", parentStyle)
          : matchName(p.text, name, subdomains === "parent", parentStyle);
      } catch (err) {
        if (!(err instanceof DictError)) throw err;
        warn(`${listName}: ${p.text}: table lookup problem`);
        return "error";
      }
      if (hit) return p.negate ? "none" : "match";
    }
    return "none";
  };
  return { name, empty: patterns.length === 0, match };
}

/** Turns list words into patterns: tables opened, /file/name contents read. */
function expandPatterns(
  config: Config,
  words: string[],
  watch: TableWatch | undefined,
  depth = 0,
): Pattern[] {
  const out: Pattern[] = [];
  for (let word of words) {
    let negate = false;
    while (word.startsWith("!")) {
      negate = !negate;
      word = word.slice(1);
    }
    if (word.startsWith("/") && depth < 10) {
      let text: string;
      try {
        text = Deno.readTextFileSync(word);
      } catch (err) {
        throw new DictError(`open ${word}: ${(err as Error).message}`);
      }
      watch?.addFile(word);
      const lines = text.split("\n").map((l) => l.replace(/#.*/, ""));
      out.push(...expandPatterns(config, splitList(lines.join(" ")), watch, depth + 1));
    } else if (/^[a-z0-9_+-]+:/i.test(word) && !word.startsWith("[")) {
      const table = openMap(word, { cwd: config.configDir });
      out.push({ negate, text: word, table: watch ? watch.add(word, table) : table });
    } else {
      out.push({ negate, text: word.toLowerCase() });
    }
  }
  return out;
}

function matchName(pattern: string, name: string, domainList: boolean, parent: boolean): boolean {
  if (name === pattern) return true;
  if (!domainList) return false;
  // Parent style: "example.com" matches its subdomains; otherwise ".example.com" does.
  return parent ? name.endsWith("." + pattern) : pattern.startsWith(".") && name.endsWith(pattern);
}

async function matchTable(
  table: Dict,
  name: string,
  domainList: boolean,
  parent: boolean,
): Promise<boolean> {
  if (await table.lookup(name) !== undefined) return true;
  if (!domainList || table.type === "regexp" || table.type === "pcre") return false;
  for (let dot = name.indexOf("."); dot >= 0; dot = name.indexOf(".", dot + 1)) {
    const key = parent ? name.slice(dot + 1) : name.slice(dot);
    if (key && key !== "." && await table.lookup(key) !== undefined) return true;
  }
  return false;
}

/** Normalizes an IP address for comparison (IPv6 expanded, lower case); undefined if not one. */
export function normalizeIp(text: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    return text.split(".").every((o) => Number(o) <= 255)
      ? text.split(".").map(Number).join(".")
      : undefined;
  }
  if (!text.includes(":") || !/^[0-9a-f:.]+$/i.test(text)) return undefined;
  let head = text;
  let v4: string[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const quad = normalizeIp(text.slice(lastColon + 1));
    if (!quad) return undefined;
    const o = quad.split(".").map(Number);
    v4 = [((o[0] << 8) | o[1]).toString(16), ((o[2] << 8) | o[3]).toString(16)];
    head = text.slice(0, lastColon + 1) + "0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const left = halves[0] ? halves[0].split(":") : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  if (v4.length) (right.length ? right : left).pop();
  const groups = [...left, ...right, ...v4].length;
  const fill = halves.length === 2 ? 8 - groups : 0;
  const all = [...left, ...Array(Math.max(fill, 0)).fill("0"), ...right, ...v4];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return all.map((g) => parseInt(g, 16).toString(16)).join(":");
}

/** The addresses named by inet_interfaces or proxy_interfaces (host names resolved once). */
export async function interfaceAddresses(words: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const word of words.map((w) => w.toLowerCase())) {
    if (word === "all") {
      for (const nic of Deno.networkInterfaces()) {
        const ip = normalizeIp(nic.address.replace(/%.*$/, ""));
        if (ip) out.add(ip);
      }
    } else if (word === "loopback-only") {
      out.add("127.0.0.1");
      out.add(normalizeIp("::1")!);
    } else {
      const literal = normalizeIp(word.replace(/^\[|\]$/g, ""));
      if (literal) {
        out.add(literal);
        continue;
      }
      for (const type of ["A", "AAAA"] as const) {
        try {
          for (const ip of await Deno.resolveDns(word, type)) out.add(normalizeIp(ip) ?? ip);
        } catch {
          // An unresolvable interface name contributes nothing (Postfix would stop).
        }
      }
      if (word === "localhost") {
        out.add("127.0.0.1");
        out.add(normalizeIp("::1")!);
      }
    }
  }
  return out;
}

/** Postfix's resolve_local: is `domain` delivered on this machine (mydestination, [own address])? */
export interface LocalResolver {
  isLocal(domain: string): Promise<MatchResult>;
}

/** Builds resolve_local from mydestination, inet_interfaces and proxy_interfaces. */
export async function localResolver(
  config: Config,
  watch?: TableWatch,
): Promise<LocalResolver> {
  const mydestination = compileDomainList(
    config,
    "mydestination",
    config.get("mydestination"),
    "none",
    watch,
  );
  const own = await interfaceAddresses([
    ...config.list("inet_interfaces"),
    ...config.list("proxy_interfaces"),
  ]);
  return {
    async isLocal(domain) {
      let name = domain;
      // One trailing dot is dropped, two mean a bogus name.
      if (name.endsWith(".")) name = name.slice(0, -1);
      if (name === "" || name.endsWith(".")) return "none";
      const listed = await mydestination.match(name);
      if (listed !== "none") return listed;
      if (name.startsWith("[") && name.endsWith("]")) {
        const inner = name.slice(1, -1).replace(/^ipv6:/i, "");
        const ip = normalizeIp(inner);
        if (ip && own.has(ip)) return "match";
      }
      return "none";
    },
  };
}
