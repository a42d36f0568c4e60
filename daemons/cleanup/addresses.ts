// Address processing in cleanup(8): canonical mapping (canonical_maps and
// the sender/recipient ones, by class), masquerading (masquerade_domains,
// masquerade_exceptions), and virtual alias expansion with its recursion and
// expansion limits.

import { rewriteAddress, splitAddress } from "../../lib/address/mod.ts";
import type { AddressClasses, CleanupSettings } from "./settings.ts";
import type { AddressMap, CleanupTables } from "./tables.ts";

/** Which of the four address classes an address belongs to. */
export type AddressClass = keyof AddressClasses;

/** Thrown when virtual alias expansion exceeds a limit; the message is the warning. */
export class ExpansionError extends Error {}

/** Which rewrite rule set applies: trivial-rewrite's local or remote context, or none. */
export type RewriteRule = "local" | "remote" | "";

/**
 * Rewrites an address to canonical form: through the trivial-rewrite service
 * when the tables name one (the daemon), else with lib/address's rules in
 * process (tests, benchmarks). Rule "" leaves it as it is (a remote
 * client's headers with remote_header_rewrite_domain empty); "remote" uses
 * $remote_header_rewrite_domain for both the @origin and the .domain.
 */
export function toCanonical(
  address: string,
  settings: CleanupSettings,
  tables: CleanupTables,
  rule: RewriteRule = "local",
): Promise<string> {
  if (rule === "") return Promise.resolve(address);
  if (tables.rewrite) return tables.rewrite(rule, address);
  const rules = rule === "local" ? settings.rewrite : {
    ...settings.rewrite,
    myorigin: settings.remoteHeaderRewriteDomain,
    mydomain: settings.remoteHeaderRewriteDomain,
  };
  return Promise.resolve(rewriteAddress(address, rules));
}

/** canonical(5) nesting bound, as Postfix's one-to-one mapping loop. */
const MAX_CANONICAL_NESTING = 10;

/** Applies one canonical table until the address stops changing. */
async function mapOneToOne(
  address: string,
  map: AddressMap,
  settings: CleanupSettings,
  tables: CleanupTables,
  warn: (text: string) => void,
  mapName: string,
): Promise<string> {
  let current = address;
  for (let i = 0; i < MAX_CANONICAL_NESTING; i++) {
    const found = await map(current);
    if (found === undefined) return current;
    const list = found.split(",");
    if (list.length > 1) warn(`multi-valued ${mapName} entry for ${current}`);
    const next = await toCanonical(list[0], settings, tables);
    if (next === current) return current;
    current = next;
  }
  warn(`unreasonable ${mapName} map nesting for ${address} -- giving up`);
  return current;
}

/** Masquerades the domain of `address` (masquerade_domains, masquerade_exceptions). */
export function masquerade(address: string, settings: CleanupSettings): string {
  if (settings.masqueradeDomains.length === 0) return address;
  const { local, domain, hasAt } = splitAddress(address);
  if (!hasAt || domain === "") return address;
  if (settings.masqueradeExceptions.some((u) => u.toLowerCase() === local.toLowerCase())) {
    return address;
  }
  const lower = domain.toLowerCase();
  for (const entry of settings.masqueradeDomains) {
    const exclude = entry.startsWith("!");
    const masq = (exclude ? entry.slice(1) : entry).toLowerCase();
    // A listed domain itself is left alone and ends the search.
    if (lower === masq) return address;
    if (lower.endsWith("." + masq)) {
      return exclude ? address : `${local}@${masq}`;
    }
  }
  return address;
}

/** The canonical form of an address of class `cls`: rewrite rules, maps, masquerading. */
export async function canonicalize(
  address: string,
  cls: AddressClass,
  settings: CleanupSettings,
  tables: CleanupTables,
  warn: (text: string) => void,
  useMaps = true,
  rule: RewriteRule = "local",
): Promise<string> {
  let addr = await toCanonical(address, settings, tables, rule);
  if (addr === "") return addr;
  const sender = cls === "envelopeSender" || cls === "headerSender";
  const own = sender ? tables.senderCanonical : tables.recipientCanonical;
  const ownClasses = sender ? settings.senderCanonicalClasses : settings.recipientCanonicalClasses;
  if (useMaps && own && ownClasses[cls]) {
    addr = await mapOneToOne(
      addr,
      own,
      settings,
      tables,
      warn,
      sender ? "sender_canonical_maps" : "recipient_canonical_maps",
    );
  }
  if (useMaps && tables.canonical && settings.canonicalClasses[cls]) {
    addr = await mapOneToOne(addr, tables.canonical, settings, tables, warn, "canonical_maps");
  }
  if (settings.masqueradeClasses[cls]) addr = masquerade(addr, settings);
  return addr;
}

/**
 * Expands a recipient through virtual_alias_maps, breadth first. An address
 * whose expansion includes itself is kept and not expanded again. Exceeding
 * virtual_alias_recursion_limit or virtual_alias_expansion_limit throws
 * ExpansionError with Postfix's warning text.
 */
export async function expandVirtual(
  address: string,
  settings: CleanupSettings,
  map: AddressMap,
  tables: CleanupTables = {},
): Promise<string[]> {
  const done: string[] = [];
  let level = [address];
  for (let depth = 0; level.length > 0; depth++) {
    // Each level's lookups count, the last (unmatched) one included, as the reference counts.
    if (depth >= settings.virtualAliasRecursionLimit) {
      throw new ExpansionError(
        `unreasonable virtual_alias_maps map nesting for ${address} -- message not accepted, try again later`,
      );
    }
    const next: string[] = [];
    for (const addr of level) {
      const found = await map(addr);
      if (found === undefined) {
        done.push(addr);
        continue;
      }
      for (const item of found.split(",").map((s) => s.trim()).filter(Boolean)) {
        const target = await toCanonical(item, settings, tables);
        if (target.toLowerCase() === addr.toLowerCase()) done.push(target);
        else next.push(target);
      }
      if (done.length + next.length > settings.virtualAliasExpansionLimit) {
        throw new ExpansionError(
          `unreasonable virtual_alias_maps map expansion size for ${address} -- message not accepted, try again later`,
        );
      }
    }
    level = next;
  }
  return done;
}
