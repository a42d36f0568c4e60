// Rewriting an address to canonical form, trivial-rewrite(8)'s "rewrite"
// request in the `local` context: strip an obsolete source route, swap a UUCP
// bang path (swap_bangpath), turn `user%domain` into `user@domain`
// (allow_percent_hack), append @$myorigin (append_at_myorigin) and .$mydomain
// (append_dot_mydomain), drop one trailing dot of the domain. The cleanup
// daemon asks the trivial-rewrite service instead, as Postfix's does; these
// string rules serve cleanup's in-process core (its tests and benchmark) and
// any program that must rewrite without the service.

import { splitAddress } from "./quote.ts";

/** The parameters the rewrite rules read (Postfix names, camelCase). */
export interface RewriteRules {
  myorigin: string;
  mydomain: string;
  appendAtMyorigin: boolean;
  appendDotMydomain: boolean;
  swapBangpath: boolean;
  allowPercentHack: boolean;
}

/** Reads the rules from a configuration (anything with get/bool, i.e. lib/config's Config). */
export function rewriteRulesFrom(
  config: { get(name: string): string; bool(name: string): boolean },
): RewriteRules {
  return {
    myorigin: config.get("myorigin"),
    mydomain: config.get("mydomain"),
    appendAtMyorigin: config.bool("append_at_myorigin"),
    appendDotMydomain: config.bool("append_dot_mydomain"),
    swapBangpath: config.bool("swap_bangpath"),
    allowPercentHack: config.bool("allow_percent_hack"),
  };
}

/** Removes an obsolete source route: `@a,@b:user@c` becomes `user@c`. */
export function stripRoute(address: string): string {
  if (!address.startsWith("@")) return address;
  const colon = address.indexOf(":");
  return colon < 0 ? address : address.slice(colon + 1);
}

/** Applies the canonical-form rules to an internal-form address. */
export function rewriteAddress(address: string, rules: RewriteRules): string {
  // The null address and the bare `@` stay as they are (Postfix leaves them empty).
  if (address === "" || address === "@") return address;
  let addr = stripRoute(address);
  let { local, domain, hasAt } = splitAddress(addr);
  // `user@` stays as it is (the reference's rewrite leaves it alone).
  if (hasAt && domain === "") return addr;
  if (hasAt && domain.endsWith(".") && domain.length > 1) {
    // One trailing dot of a domain is dropped (`user@example.com.`).
    domain = domain.slice(0, -1);
    addr = `${local}@${domain}`;
  }
  if (!hasAt && rules.swapBangpath && addr.includes("!")) {
    const bang = addr.indexOf("!");
    addr = `${addr.slice(bang + 1)}@${addr.slice(0, bang)}`;
    ({ local, domain, hasAt } = splitAddress(addr));
  }
  if (!hasAt && rules.allowPercentHack && addr.includes("%")) {
    const pct = addr.lastIndexOf("%");
    addr = `${addr.slice(0, pct)}@${addr.slice(pct + 1)}`;
    ({ local, domain, hasAt } = splitAddress(addr));
  }
  if (!hasAt) {
    if (!rules.appendAtMyorigin || !rules.myorigin) return addr;
    local = addr;
    domain = rules.myorigin;
  }
  if (
    rules.appendDotMydomain && rules.mydomain && domain !== "" && !domain.includes(".") &&
    !domain.startsWith("[")
  ) {
    domain = `${domain}.${rules.mydomain}`;
  }
  return `${local}@${domain}`;
}
