// transport(5) for the resolver: the search order is maps/search.ts's
// (user+ext@domain, user@domain, domain, parent domains, `*`); this module
// applies a result to the transport and next hop found so far:
//
//   transport:nexthop   both replaced
//   transport           transport replaced, next hop reset to the recipient
//                       domain (error and retry: "Address is undeliverable")
//   :nexthop            next hop replaced, transport kept
//   :  (or empty)       nothing changes
//
// The value is split at its first colon, so `smtp:[::1]:25` keeps its
// address literal.

import { quoteAddress } from "../../lib/address/mod.ts";
import {
  type Dict,
  type SearchResult,
  searchTransport,
  type TransportSettings,
} from "../../maps/mod.ts";

/** The transport and next hop being decided for a recipient. */
export interface Route {
  transport: string;
  nexthop: string;
}

/** Applies one transport(5) value to `route` (Postfix's update_entry). */
export function applyTransportEntry(value: string, rcptDomain: string, route: Route): void {
  const colon = value.indexOf(":");
  const transport = colon < 0 ? value : value.slice(0, colon);
  const nexthop = colon < 0 ? "" : value.slice(colon + 1);
  if (transport === "") {
    if (nexthop !== "") route.nexthop = nexthop;
    return;
  }
  route.transport = transport;
  if (nexthop !== "") route.nexthop = nexthop;
  else if (transport !== "error" && transport !== "retry") route.nexthop = rcptDomain;
  else route.nexthop = "Address is undeliverable";
}

/**
 * Searches `tables` for `recipient` (internal form). The full address is
 * tried in external (quoted) form first, then in the internal form older
 * tables may hold.
 */
export async function searchTransportFor(
  tables: Dict[],
  settings: TransportSettings,
  recipient: string,
): Promise<SearchResult | undefined> {
  const external = quoteAddress(recipient);
  const hit = await searchTransport(tables, external, settings);
  if (hit && hit.key === "*" && external !== recipient) {
    return (await searchTransport(tables, recipient, settings)) ?? hit;
  }
  return hit;
}
