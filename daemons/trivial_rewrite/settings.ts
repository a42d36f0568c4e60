// What trivial-rewrite(8) reads from main.cf, read once per process: the
// canonical-form rules, the address classes, and the two parameter sets of
// the resolver (regular and address_verify_*), with their tables opened.

import type { Config } from "../../lib/config/mod.ts";
import { fatal, warn } from "../../lib/log.ts";
import {
  type AddressMapSettings,
  addressMapSettings,
  type Dict,
  DictError,
  openMap,
  type TransportSettings,
  transportSettings,
} from "../../maps/mod.ts";
import { TableWatch } from "./watch.ts";
import { canonicalFrom, type CanonicalSettings, type RewriteContext } from "./canonical.ts";
import {
  compileDomainList,
  type DomainList,
  type LocalResolver,
  localResolver,
} from "./domains.ts";

/** The parameter names of one resolver context (for warnings). */
export interface ResolveParamNames {
  localTransport: string;
  virtualTransport: string;
  relayTransport: string;
  defaultTransport: string;
  relayhost: string;
  transportMaps: string;
  senderRelayhostMaps: string;
  senderDefaultTransportMaps: string;
}

/** One resolver context: "resolve" or "resolve_verify". */
export interface ResolveParams {
  names: ResolveParamNames;
  localTransport: string;
  virtualTransport: string;
  relayTransport: string;
  defaultTransport: string;
  relayhost: string;
  transportMaps: Dict[];
  senderRelayhostMaps: Dict[];
  senderDefaultTransportMaps: Dict[];
}

/** Everything the service needs. */
export interface Settings {
  configDir: string;
  myhostname: string;
  canonical: CanonicalSettings;
  localContext: RewriteContext;
  remoteContext: RewriteContext;
  local: LocalResolver;
  virtualAliasDomains: DomainList;
  virtualMailboxDomains: DomainList;
  relayDomains: DomainList;
  relocatedMaps: Dict[];
  addressMapSettings: AddressMapSettings;
  transportSettings: TransportSettings;
  regular: ResolveParams;
  verify: ResolveParams;
  resolveDequoted: boolean;
  resolveNullDomain: boolean;
  resolveNumericDomain: boolean;
  allowMinUser: boolean;
  showUnknownTable: boolean;
  helpfulWarnings: boolean;
  smtputf8: boolean;
  nullRelayhostKey: string;
  nullDefaultTransportKey: string;
  /** The tables and files behind this configuration. */
  watch: TableWatch;
}

const regularNames: ResolveParamNames = {
  localTransport: "local_transport",
  virtualTransport: "virtual_transport",
  relayTransport: "relay_transport",
  defaultTransport: "default_transport",
  relayhost: "relayhost",
  transportMaps: "transport_maps",
  senderRelayhostMaps: "sender_dependent_relayhost_maps",
  senderDefaultTransportMaps: "sender_dependent_default_transport_maps",
};

const verifyNames: ResolveParamNames = Object.fromEntries(
  Object.entries(regularNames).map(([k, v]) => [k, `address_verify_${v}`]),
) as unknown as ResolveParamNames;

function openTables(config: Config, name: string, watch: TableWatch): Dict[] {
  return config.list(name).map((spec) =>
    watch.add(spec, reportingErrors(spec, openMap(spec, { cwd: config.configDir })))
  );
}

/** A table whose failed lookups are logged with the key, as Postfix's maps_find logs them. */
function reportingErrors(spec: string, table: Dict): Dict {
  const lookup = table.lookup.bind(table);
  return Object.assign(Object.create(table), {
    lookup: async (key: string) => {
      try {
        return await lookup(key);
      } catch (err) {
        if (err instanceof DictError) warn(`${spec} lookup error for "${key}"`);
        throw err;
      }
    },
  }) as Dict;
}

/** A transport parameter may not be empty (Postfix's minimum length 1). */
function transportParam(config: Config, name: string): string {
  const value = config.get(name);
  if (value === "") fatal(`bad string length 0 < 1: ${name} = `);
  return value;
}

function paramsFor(
  config: Config,
  names: ResolveParamNames,
  watch: TableWatch,
): ResolveParams {
  return {
    names,
    localTransport: transportParam(config, names.localTransport),
    virtualTransport: transportParam(config, names.virtualTransport),
    relayTransport: transportParam(config, names.relayTransport),
    defaultTransport: transportParam(config, names.defaultTransport),
    relayhost: config.get(names.relayhost),
    transportMaps: openTables(config, names.transportMaps, watch),
    senderRelayhostMaps: openTables(config, names.senderRelayhostMaps, watch),
    senderDefaultTransportMaps: openTables(config, names.senderDefaultTransportMaps, watch),
  };
}

/** Reads main.cf and opens every table; DictError when a table cannot be opened. */
export async function settingsFrom(config: Config): Promise<Settings> {
  const { settings: canonical, local: localContext, remote: remoteContext } = canonicalFrom(
    config,
  );
  const watch = new TableWatch(config.configDir);
  const local = await localResolver(config, watch);
  const names = new Set(config.list("mydestination").map((d) => d.toLowerCase()));
  const isLocalName = (domain: string) => names.has(domain.toLowerCase());
  return {
    configDir: config.configDir,
    myhostname: config.get("myhostname"),
    canonical,
    localContext,
    remoteContext,
    local,
    virtualAliasDomains: compileDomainList(
      config,
      "virtual_alias_domains",
      config.get("virtual_alias_domains"),
      "none",
      watch,
    ),
    virtualMailboxDomains: compileDomainList(
      config,
      "virtual_mailbox_domains",
      config.get("virtual_mailbox_domains"),
      "none",
      watch,
    ),
    relayDomains: compileDomainList(
      config,
      "relay_domains",
      config.get("relay_domains"),
      "parent",
      watch,
    ),
    relocatedMaps: openTables(config, "relocated_maps", watch),
    addressMapSettings: {
      ...addressMapSettings(config, "relocated", isLocalName),
      propagateExtension: false,
    },
    transportSettings: transportSettings(config),
    regular: paramsFor(config, regularNames, watch),
    verify: paramsFor(config, verifyNames, watch),
    watch,
    resolveDequoted: config.bool("resolve_dequoted_address"),
    resolveNullDomain: config.bool("resolve_null_domain"),
    resolveNumericDomain: config.bool("resolve_numeric_domain"),
    allowMinUser: config.bool("allow_min_user"),
    showUnknownTable: config.bool("show_user_unknown_table_name"),
    helpfulWarnings: config.bool("helpful_warnings"),
    smtputf8: config.bool("smtputf8_enable"),
    nullRelayhostKey: config.get("empty_address_relayhost_maps_lookup_key"),
    nullDefaultTransportKey: config.get("empty_address_default_transport_maps_lookup_key"),
  };
}
