// The table search orders of Postfix, in one place for every program:
// access(5) (addresses, domains, host names, IP addresses), virtual(5),
// canonical(5), relocated(5), transport(5) and aliases(5), with address
// extensions (recipient_delimiter) and parent-domain matching as Postfix
// does them.
//
// Pattern tables (regexp, pcre, cidr) get only the complete key: Postfix
// does no partial-key lookups with them.
//
// Addresses are given in external form (a local part that needs quoting is
// quoted, as in the table keys), with case as received: fixed-string tables
// fold keys themselves.

import type { Dict } from "./dict.ts";

/** A match: the value, the key that found it, and the table that had it. */
export interface SearchResult {
  value: string;
  key: string;
  table: Dict;
}

const patternTypes = new Set(["regexp", "pcre", "cidr"]);

/** Whether a table matches patterns against the whole input (no partial keys). */
export function isPatternTable(table: Dict): boolean {
  return patternTypes.has(table.type);
}

/** One key to try, and whether it is the complete input (pattern tables get only those). */
interface Probe {
  key: string;
  full: boolean;
}

/** Tries each key against each table, key by key; the first hit wins. */
async function probe(tables: Dict[], probes: Probe[]): Promise<SearchResult | undefined> {
  for (const p of probes) {
    for (const table of tables) {
      if (!p.full && isPatternTable(table)) continue;
      const value = await table.lookup(p.key);
      if (value !== undefined) return { value, key: p.key, table };
    }
  }
  return undefined;
}

/** An address split at its last "@"; domain is undefined for a bare local part. */
export function splitAddress(address: string): { local: string; domain?: string } {
  const at = address.lastIndexOf("@");
  return at < 0
    ? { local: address }
    : { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/**
 * Splits an address extension off a local part at the first character that
 * is one of `delimiters` (recipient_delimiter). As in Postfix, with "-" as
 * the delimiter, owner-xxx and xxx-request are not split.
 */
export function splitExtension(
  local: string,
  delimiters: string,
): { base: string; extension?: string } {
  if (!delimiters || !local) return { base: local };
  let at = -1;
  for (let i = 0; i < local.length; i++) {
    if (delimiters.includes(local[i])) {
      at = i;
      break;
    }
  }
  if (at <= 0) return { base: local };
  if (local[at] === "-") {
    const lower = local.toLowerCase();
    if (lower.startsWith("owner-") || lower.endsWith("-request")) return { base: local };
  }
  return { base: local.slice(0, at), extension: local.slice(at) };
}

/** Whether `name` is listed in parent_domain_matches_subdomains (given as a list). */
export function parentMatchesSubdomains(list: string[], name: string): boolean {
  return list.includes(name);
}

/**
 * The domain keys access(5) and transport(5) try: the domain itself, then
 * each parent domain, as `example.com` when the feature is listed in
 * parent_domain_matches_subdomains and as `.example.com` otherwise.
 */
export function domainKeys(domain: string, parentStyle: boolean): string[] {
  const keys = [domain];
  for (let dot = domain.indexOf("."); dot >= 0; dot = domain.indexOf(".", dot + 1)) {
    const parent = parentStyle ? domain.slice(dot + 1) : domain.slice(dot);
    if (parent !== "" && parent !== ".") keys.push(parent);
  }
  return keys;
}

/** Settings for access(5) searches. */
export interface AccessSettings {
  /** recipient_delimiter. */
  recipientDelimiter: string;
  /** smtpd_access_maps is listed in parent_domain_matches_subdomains. */
  parentStyle: boolean;
}

/**
 * access(5) for a mail address: user+ext@domain, user@domain, domain and
 * its parents, user+ext@, user@.
 */
export function searchAccessAddress(
  table: Dict | Dict[],
  address: string,
  settings: AccessSettings,
): Promise<SearchResult | undefined> {
  const tables = Array.isArray(table) ? table : [table];
  const { local, domain } = splitAddress(address);
  const { base, extension } = splitExtension(local, settings.recipientDelimiter);
  const probes: Probe[] = [{ key: address, full: true }];
  if (domain !== undefined && extension) probes.push({ key: `${base}@${domain}`, full: false });
  if (domain) {
    for (const key of domainKeys(domain, settings.parentStyle)) probes.push({ key, full: false });
  }
  probes.push({ key: `${local}@`, full: false });
  if (extension) probes.push({ key: `${base}@`, full: false });
  return probe(tables, dedupe(probes));
}

/** access(5) for a domain or host name: the name, then its parent domains. */
export function searchAccessDomain(
  table: Dict | Dict[],
  name: string,
  parentStyle: boolean,
): Promise<SearchResult | undefined> {
  const tables = Array.isArray(table) ? table : [table];
  const probes = domainKeys(name, parentStyle).map((key, i) => ({ key, full: i === 0 }));
  return probe(tables, probes);
}

/**
 * access(5) for a client IP address: the address, then shorter network
 * forms made by dropping the last octet (IPv4, "1.2.3") or the last
 * ":field" (IPv6, "2001:db8:1"), down to the first part.
 */
export function searchAccessAddressIP(
  table: Dict | Dict[],
  ip: string,
): Promise<SearchResult | undefined> {
  const tables = Array.isArray(table) ? table : [table];
  const delim = ip.includes(":") ? ":" : ".";
  const probes: Probe[] = [{ key: ip, full: true }];
  for (let cut = ip.lastIndexOf(delim); cut > 0; cut = ip.lastIndexOf(delim, cut - 1)) {
    probes.push({ key: ip.slice(0, cut), full: false });
  }
  return probe(tables, probes);
}

/** Settings for the virtual(5), canonical(5) and relocated(5) search order. */
export interface AddressMapSettings {
  /** recipient_delimiter. */
  recipientDelimiter: string;
  /** Whether a domain is $myorigin, in $mydestination, $inet_interfaces or $proxy_interfaces. */
  isLocalDomain: (domain: string) => boolean;
  /** Whether this table class is in propagate_unmatched_extensions. */
  propagateExtension: boolean;
}

/** The keys of the address-map order: user+ext@domain, user@domain, user+ext, user, @domain. */
function addressMapProbes(address: string, s: AddressMapSettings): Probe[] {
  const { local, domain } = splitAddress(address);
  const { base, extension } = splitExtension(local, s.recipientDelimiter);
  const probes: Probe[] = [{ key: address, full: true }];
  if (domain === undefined) {
    if (extension) probes.push({ key: base, full: false });
    return probes;
  }
  if (extension) probes.push({ key: `${base}@${domain}`, full: false });
  if (s.isLocalDomain(domain)) {
    probes.push({ key: local, full: false });
    if (extension) probes.push({ key: base, full: false });
  }
  probes.push({ key: `@${domain}`, full: false });
  return dedupe(probes);
}

function dedupe(probes: Probe[]): Probe[] {
  const seen = new Set<string>();
  return probes.filter((p) => (seen.has(p.key) ? false : (seen.add(p.key), true)));
}

/**
 * Rewrites a result as virtual(5) and canonical(5) say: `@otherdomain`
 * becomes the same user in otherdomain (first address only), and an
 * extension the matched key lacked is added to each address when
 * propagate_unmatched_extensions asks for it.
 */
function rewriteResult(
  value: string,
  address: string,
  matchedKey: string,
  s: AddressMapSettings,
  list: boolean,
): string {
  const { local } = splitAddress(address);
  const { base, extension } = splitExtension(local, s.recipientDelimiter);
  const keyHadExtension = extension !== undefined && splitAddress(matchedKey).local === local;
  const addExt = extension && !keyHadExtension && s.propagateExtension ? extension : "";
  const items = list ? value.split(/\s*,\s*/).filter(Boolean) : [value.trim()];
  const out = items.map((item, i) => {
    if (i === 0 && item.startsWith("@")) return `${base}${addExt}${item}`;
    if (!addExt) return item;
    const parts = splitAddress(item);
    if (splitExtension(parts.local, s.recipientDelimiter).extension) return item;
    return parts.domain === undefined
      ? `${parts.local}${addExt}`
      : `${parts.local}${addExt}@${parts.domain}`;
  });
  return out.join(list ? ", " : "");
}

/** virtual(5): the alias addresses for `address`, rewritten as described there. */
export async function searchVirtual(
  tables: Dict[],
  address: string,
  settings: AddressMapSettings,
): Promise<SearchResult | undefined> {
  const hit = await probe(tables, addressMapProbes(address, settings));
  if (!hit) return undefined;
  return { ...hit, value: rewriteResult(hit.value, address, hit.key, settings, true) };
}

/** canonical(5): the replacement address for `address`. */
export async function searchCanonical(
  tables: Dict[],
  address: string,
  settings: AddressMapSettings,
): Promise<SearchResult | undefined> {
  const hit = await probe(tables, addressMapProbes(address, settings));
  if (!hit) return undefined;
  return { ...hit, value: rewriteResult(hit.value, address, hit.key, settings, false) };
}

/** relocated(5): the new-location text for `address` (not rewritten). */
export function searchRelocated(
  tables: Dict[],
  address: string,
  settings: Omit<AddressMapSettings, "propagateExtension">,
): Promise<SearchResult | undefined> {
  return probe(tables, addressMapProbes(address, { ...settings, propagateExtension: false }));
}

/** Settings for transport(5). */
export interface TransportSettings {
  /** recipient_delimiter. */
  recipientDelimiter: string;
  /** transport_maps is listed in parent_domain_matches_subdomains. */
  parentStyle: boolean;
}

/**
 * transport(5): user+ext@domain, user@domain, domain, parent domains
 * (`.domain` or `domain` as parent_domain_matches_subdomains says), then `*`.
 */
export function searchTransport(
  tables: Dict[],
  address: string,
  settings: TransportSettings,
): Promise<SearchResult | undefined> {
  const { local, domain } = splitAddress(address);
  const { base, extension } = splitExtension(local, settings.recipientDelimiter);
  const probes: Probe[] = [{ key: address, full: true }];
  if (domain !== undefined) {
    if (extension) probes.push({ key: `${base}@${domain}`, full: false });
    for (const key of domainKeys(domain, settings.parentStyle)) probes.push({ key, full: false });
  }
  probes.push({ key: "*", full: false });
  return probe(tables, dedupe(probes));
}

/**
 * aliases(5) as local(8) searches them: the local part with its extension,
 * then without it.
 */
export function searchAliases(
  tables: Dict[],
  localPart: string,
  settings: { recipientDelimiter: string },
): Promise<SearchResult | undefined> {
  const { base, extension } = splitExtension(localPart, settings.recipientDelimiter);
  const probes: Probe[] = [{ key: localPart, full: true }];
  if (extension) probes.push({ key: base, full: false });
  return probe(tables, probes);
}

/** The part of lib/config's Config these helpers read. */
export interface SearchConfig {
  get(name: string): string;
  list(name: string): string[];
}

/** Whether `feature` (smtpd_access_maps, transport_maps, ...) matches subdomains by parent name. */
export function parentStyleFor(config: SearchConfig, feature: string): boolean {
  return config.list("parent_domain_matches_subdomains").includes(feature);
}

/** access(5) settings from main.cf. */
export function accessSettings(config: SearchConfig): AccessSettings {
  return {
    recipientDelimiter: config.get("recipient_delimiter"),
    parentStyle: parentStyleFor(config, "smtpd_access_maps"),
  };
}

/** transport(5) settings from main.cf. */
export function transportSettings(config: SearchConfig): TransportSettings {
  return {
    recipientDelimiter: config.get("recipient_delimiter"),
    parentStyle: parentStyleFor(config, "transport_maps"),
  };
}

/**
 * virtual(5)/canonical(5)/relocated(5) settings from main.cf; `tableClass`
 * is the propagate_unmatched_extensions word ("canonical", "virtual", ...)
 * and `isLocalDomain` the caller's test for $myorigin, $mydestination,
 * $inet_interfaces and $proxy_interfaces.
 */
export function addressMapSettings(
  config: SearchConfig,
  tableClass: string,
  isLocalDomain: (domain: string) => boolean,
): AddressMapSettings {
  return {
    recipientDelimiter: config.get("recipient_delimiter"),
    isLocalDomain,
    propagateExtension: config.list("propagate_unmatched_extensions").includes(tableClass),
  };
}
