// hosts(5) lookups, for the name lookups that Postfix makes through the C
// library (getnameinfo/getaddrinfo: the client hostname and its forward
// confirmation), where "files" comes before "dns" in the usual nsswitch order.

import { normalizeAddress } from "./address.ts";

/** One hosts(5) entry: an address and its names (canonical name first). */
export interface HostsEntry {
  address: string;
  names: string[];
}

/** Parses hosts(5) text; malformed lines are skipped as the C library does. */
export function parseHosts(text: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const [address, ...names] = line.split(/\s+/);
    const canon = normalizeAddress(address);
    if (!canon || names.length === 0) continue;
    out.push({ address: canon, names: names.map((n) => n.toLowerCase()) });
  }
  return out;
}

/** Reads a hosts file; a missing or unreadable file has no entries. */
export function readHosts(path = "/etc/hosts"): HostsEntry[] {
  try {
    return parseHosts(Deno.readTextFileSync(path));
  } catch {
    return [];
  }
}

/** The canonical name hosts(5) gives an address, if any. */
export function hostsNameOf(entries: HostsEntry[], address: string): string | undefined {
  const canon = normalizeAddress(address);
  return entries.find((e) => e.address === canon)?.names[0];
}

/** The addresses hosts(5) gives a name (case-insensitive), in file order. */
export function hostsAddressesOf(entries: HostsEntry[], name: string): string[] {
  const lower = name.toLowerCase().replace(/\.$/, "");
  return entries.filter((e) => e.names.includes(lower)).map((e) => e.address);
}
