// The lookup tables cleanup(8) consults, opened once per process: the
// address maps (canonical, virtual alias, BCC), searched in maps/search.ts's
// canonical(5) and virtual(5) orders, and the header/body check tables.

import type { Config } from "../../lib/config/mod.ts";
import { type Dict, openMap } from "../../maps/mod.ts";
import {
  type AddressMapSettings,
  addressMapSettings,
  searchCanonical,
  searchVirtual,
} from "../../maps/search.ts";
import { quoteAddress, unquoteAddress } from "../../lib/address/mod.ts";

/** One address mapping: the result for an internal-form address, or undefined. */
export type AddressMap = (address: string) => Promise<string | undefined>;

/** A header/body check table: the action for one line, or undefined. */
export type CheckTable = (line: string) => Promise<string | undefined>;

/** Everything cleanup looks up; a missing member means the parameter is empty. */
export interface CleanupTables {
  /**
   * Canonical-form rewriting (trivial-rewrite's "rewrite" request) on
   * internal-form addresses; without it cleanup applies lib/address's rules.
   */
  rewrite?: (rule: "local" | "remote", address: string) => Promise<string>;
  canonical?: AddressMap;
  senderCanonical?: AddressMap;
  recipientCanonical?: AddressMap;
  /** virtual_alias_maps: a comma-separated list of internal-form addresses. */
  virtualAlias?: AddressMap;
  senderBcc?: AddressMap;
  recipientBcc?: AddressMap;
  headerChecks?: CheckTable;
  mimeHeaderChecks?: CheckTable;
  nestedHeaderChecks?: CheckTable;
  bodyChecks?: CheckTable;
}

/** Opens the tables named by a parameter (a list of type:name), or none. */
function openTables(config: Config, name: string): Dict[] {
  return config.list(name).map((spec) => openMap(spec, { cwd: config.configDir }));
}

/** Whether `domain` is local for the "user" lookup key (canonical(5)). */
function localDomainTest(config: Config): (domain: string) => boolean {
  const names = new Set(
    [config.get("myorigin"), ...config.list("mydestination")].map((s) => s.toLowerCase()),
  );
  const addrs = new Set([...config.list("inet_interfaces"), ...config.list("proxy_interfaces")]);
  return (domain) => {
    const d = domain.toLowerCase();
    if (names.has(d)) return true;
    return d.startsWith("[") && d.endsWith("]") && addrs.has(d.slice(1, -1));
  };
}

function addressMap(
  tables: Dict[],
  settings: AddressMapSettings,
  search: typeof searchCanonical,
): AddressMap | undefined {
  if (tables.length === 0) return undefined;
  return async (address) => {
    const hit = await search(tables, quoteAddress(address), settings);
    // Results are external-form addresses (a list for virtual); cleanup works on internal ones.
    return hit?.value.split(/\s*,\s*/).map(unquoteAddress).join(",");
  };
}

function checkTable(tables: Dict[]): CheckTable | undefined {
  if (tables.length === 0) return undefined;
  return async (line) => {
    for (const t of tables) {
      const value = await t.lookup(line);
      if (value !== undefined) return value;
    }
    return undefined;
  };
}

/** Opens every table the configuration names; DictError when one cannot be opened. */
export function openCleanupTables(config: Config): CleanupTables {
  const isLocal = localDomainTest(config);
  const canonSettings = addressMapSettings(config, "canonical", isLocal);
  const virtSettings = addressMapSettings(config, "virtual", isLocal);
  const bccSettings = { ...canonSettings, propagateExtension: false };
  const virtualAlias = addressMap(
    openTables(config, "virtual_alias_maps"),
    virtSettings,
    searchVirtual,
  );
  const shared = new Map<string, CheckTable | undefined>();
  const checks = (name: string) => {
    const spec = config.get(name);
    if (!shared.has(spec)) shared.set(spec, checkTable(openTables(config, name)));
    return shared.get(spec);
  };
  return {
    canonical: addressMap(openTables(config, "canonical_maps"), canonSettings, searchCanonical),
    senderCanonical: addressMap(
      openTables(config, "sender_canonical_maps"),
      canonSettings,
      searchCanonical,
    ),
    recipientCanonical: addressMap(
      openTables(config, "recipient_canonical_maps"),
      canonSettings,
      searchCanonical,
    ),
    virtualAlias,
    senderBcc: addressMap(openTables(config, "sender_bcc_maps"), bccSettings, searchCanonical),
    recipientBcc: addressMap(
      openTables(config, "recipient_bcc_maps"),
      bccSettings,
      searchCanonical,
    ),
    headerChecks: checks("header_checks"),
    mimeHeaderChecks: checks("mime_header_checks"),
    nestedHeaderChecks: checks("nested_header_checks"),
    bodyChecks: checks("body_checks"),
  };
}
