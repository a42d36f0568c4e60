// smtp_generic_maps (generic(5)): outgoing envelope addresses replaced by
// the table's result, looked up in canonical(5) order (user@domain, user
// for a local domain, @domain), as smtp(8) does before MAIL FROM and RCPT TO.
// Addresses go out in RFC 5321 external (quoted) form.

import type { Config } from "../../lib/config/mod.ts";
import { quoteAddress } from "../../lib/address/mod.ts";
import { openMap } from "../../maps/mod.ts";
import { addressMapSettings, searchCanonical } from "../../maps/search.ts";
import { warn } from "../../lib/log.ts";

/** From an internal-form envelope address to the external form sent. */
export type GenericMapper = (address: string) => Promise<string>;

/** The mapper for `tables` (a list of type:name); without tables, only quoting. */
export function genericMapper(config: Config, tables: string[]): GenericMapper {
  const quote = (a: string) => (a === "" ? "" : quoteAddress(a));
  if (!tables.length) return (a) => Promise.resolve(quote(a));
  const dicts = tables.map((spec) => openMap(spec, { cwd: config.configDir }));
  const names = new Set(
    [config.get("myorigin"), ...config.list("mydestination")].map((s) => s.toLowerCase()),
  );
  const settings = addressMapSettings(config, "generic", (d) => names.has(d.toLowerCase()));
  return async (address) => {
    if (address === "") return "";
    const external = quote(address);
    try {
      const hit = await searchCanonical(dicts, external, settings);
      return hit ? hit.value : external;
    } catch (err) {
      warn(`${tables.join(", ")}: lookup of ${external}: ${(err as Error).message}`);
      return external;
    }
  };
}
