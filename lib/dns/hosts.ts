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

/** The last reading of each hosts file, kept while its modification time and size stay. */
const cache = new Map<string, { stamp: string; entries: HostsEntry[] }>();

/**
 * Reads a hosts file; a missing or unreadable file has no entries. smtpd
 * asks at every connection: the parsed file is reused until it changes.
 */
export function readHosts(path = "/etc/hosts"): HostsEntry[] {
  try {
    const st = Deno.statSync(path);
    const stamp = `${st.mtime?.getTime()}:${st.size}:${st.ino}`;
    const hit = cache.get(path);
    if (hit && hit.stamp === stamp) return hit.entries;
    const entries = parseHosts(Deno.readTextFileSync(path));
    cache.set(path, { stamp, entries });
    return entries;
  } catch {
    cache.delete(path);
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
