// Address classes for the relay and recipient checks. trivial-rewrite's
// resolve service (lib/rewrite_client.ts) is the authority and smtpd asks
// it; configResolver classifies a domain from main.cf alone ($mydestination
// and the local interfaces local, virtual_alias_domains alias,
// virtual_mailbox_domains virtual, relay_domains relay, else default) for
// tests that run the checks without the service.

import type { Config } from "../../lib/config/mod.ts";
import { type Dict, openMap } from "../../maps/mod.ts";
import { resolveAddress, ResolveFlag, rewriteAddress } from "../../lib/rewrite_client.ts";

/** An address class, as trivial-rewrite names them. */
export type AddressClass = "local" | "alias" | "virtual" | "relay" | "default";

/** What the checks need to know about a recipient domain. */
export interface Resolver {
  /** The class of `address` (internal form). */
  classify(address: string): Promise<AddressClass>;
}

/** A domain list with Postfix's list syntax: names, .parent, type:table, /file. */
class DomainList {
  private names = new Set<string>();
  private parents: string[] = [];
  private tables: Dict[] = [];

  constructor(items: string[], private readonly parentMatches: boolean) {
    for (const item of items) {
      const colon = item.indexOf(":");
      if (colon > 0 && /^[a-z_]+$/.test(item.slice(0, colon))) {
        try {
          this.tables.push(openMap(item));
        } catch {
          // An unusable table matches nothing here; the daemon logs it on use elsewhere.
        }
      } else if (item.startsWith(".")) this.parents.push(item.toLowerCase());
      else this.names.add(item.toLowerCase());
    }
  }

  async has(domain: string): Promise<boolean> {
    const d = domain.toLowerCase();
    if (this.names.has(d)) return true;
    for (const p of this.parents) if (d.endsWith(p)) return true;
    if (this.parentMatches) {
      for (const n of this.names) if (d.endsWith("." + n)) return true;
    }
    for (const t of this.tables) {
      if ((await t.lookup(d)) !== undefined) return true;
      if (this.parentMatches) {
        for (let at = d.indexOf("."); at >= 0; at = d.indexOf(".", at + 1)) {
          if ((await t.lookup(d.slice(at + 1))) !== undefined) return true;
        }
      }
    }
    return false;
  }
}

/** A resolver from main.cf domain lists. */
export function configResolver(config: Config): Resolver {
  const parent = config.list("parent_domain_matches_subdomains");
  const local = new DomainList(config.list("mydestination"), false);
  const alias = new DomainList(config.list("virtual_alias_domains"), false);
  const virtual = new DomainList(config.list("virtual_mailbox_domains"), false);
  const relay = new DomainList(config.list("relay_domains"), parent.includes("relay_domains"));
  const interfaces = new Set(
    [...config.list("inet_interfaces"), ...config.list("proxy_interfaces")].map((a) =>
      a.toLowerCase()
    ),
  );
  return {
    async classify(address) {
      const at = address.lastIndexOf("@");
      if (at < 0) return "local";
      let domain = address.slice(at + 1).toLowerCase().replace(/\.$/, "");
      if (domain === "") return "local";
      if (domain.startsWith("[") && domain.endsWith("]")) {
        domain = domain.slice(1, -1).replace(/^ipv6:/, "");
        return interfaces.has(domain) || (interfaces.has("all") && isLoopback(domain))
          ? "local"
          : "default";
      }
      if (await local.has(domain)) return "local";
      if (await alias.has(domain)) return "alias";
      if (await virtual.has(domain)) return "virtual";
      if (await relay.has(domain)) return "relay";
      return "default";
    },
  };
}

function isLoopback(addr: string): boolean {
  return addr.startsWith("127.") || addr === "::1";
}

/**
 * The trivial-rewrite service as the authority: the address is first made
 * canonical in the local context (an unqualified name gets @$myorigin),
 * then resolved; the class comes from the RESOLVE_CLASS_* flags.
 */
export function rewriteResolver(config: Config): Resolver {
  return {
    async classify(address) {
      const canonical = await rewriteAddress(config, "local", address);
      const r = await resolveAddress(config, "", canonical);
      if (r.flags & ResolveFlag.FAIL) throw new Error(`resolve ${address}: failed`);
      if (r.flags & ResolveFlag.CLASS_LOCAL) return "local";
      if (r.flags & ResolveFlag.CLASS_ALIAS) return "alias";
      if (r.flags & ResolveFlag.CLASS_VIRTUAL) return "virtual";
      if (r.flags & ResolveFlag.CLASS_RELAY) return "relay";
      return "default";
    },
  };
}
