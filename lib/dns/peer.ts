// The SMTP server's client hostname lookup, as Postfix's smtpd does it:
// address->name (hosts(5), then a DNS PTR query), checks on the name, then
// name->address forward confirmation. The outcome gives both the verified
// client name and the unverified reverse name, each with a status that the
// reject_unknown_(reverse_)client_hostname restrictions read.

import { type DnsResult, Resolver, reverseName } from "./mod.ts";
import { isAddress, isIPv6Address, normalizeAddress, validHostname } from "./address.ts";
import { hostsAddressesOf, hostsNameOf, readHosts } from "./hosts.ts";

/** Lookup status of a name: Postfix's SMTPD_PEER_CODE_OK/TEMP/PERM/FORGED. */
export type PeerStatus = "ok" | "temp" | "perm" | "forged";

/** What the lookup found. */
export interface PeerNames {
  /** The verified client name, or "unknown". */
  name: string;
  /** The name from the address->name lookup only, or "unknown". */
  reverseName: string;
  nameStatus: PeerStatus;
  reverseStatus: PeerStatus;
}

/** Options for lookupPeer(). */
export interface PeerLookupOptions {
  /** hosts(5) file consulted before DNS (default /etc/hosts; "" for none). */
  hostsFile?: string;
  /** Where warnings go (Postfix logs them as smtpd warnings). */
  warn?: (text: string) => void;
}

/** The C library's texts for getaddrinfo() failures. */
const GAI_TEXT = {
  nxdomain: "Name or service not known",
  nodata: "No address associated with hostname",
  tempfail: "Temporary failure in name resolution",
} as const;

/** Looks up and forward-confirms the client's hostname. */
export async function lookupPeer(
  resolver: Resolver,
  address: string,
  options: PeerLookupOptions = {},
): Promise<PeerNames> {
  const warn = options.warn ?? (() => {});
  const unknown = (status: PeerStatus): PeerNames => ({
    name: "unknown",
    reverseName: "unknown",
    nameStatus: status,
    reverseStatus: status,
  });
  const addr = normalizeAddress(address);
  if (!addr) return unknown("perm");
  const hosts = options.hostsFile === "" ? [] : readHosts(options.hostsFile);

  // address -> name
  let found = hostsNameOf(hosts, addr);
  if (found === undefined) {
    const ptr = await resolver.query(reverseName(addr), "PTR");
    if (ptr.status === "tempfail") return unknown("temp");
    if (ptr.status !== "ok") return unknown("perm");
    found = ptr.records[0].value;
  }
  const name = found.toLowerCase().replace(/\.$/, "");
  if (isAddress(name)) {
    warn(`numeric hostname: ${name}`);
    return unknown("perm");
  }
  if (!validHostname(name)) return unknown("perm");

  // name -> address, which must give the client's address back
  const result: PeerNames = { name, reverseName: name, nameStatus: "ok", reverseStatus: "ok" };
  const forged = (status: PeerStatus, why?: string) => {
    warn(`hostname ${name} does not resolve to address ${address}${why ? `: ${why}` : ""}`);
    result.name = "unknown";
    result.nameStatus = status;
    return result;
  };
  let addresses = hostsAddressesOf(hosts, name);
  if (addresses.length === 0) {
    const forward: DnsResult = await resolver.query(name, isIPv6Address(addr) ? "AAAA" : "A");
    if (forward.status === "tempfail") return forged("temp", GAI_TEXT.tempfail);
    if (forward.status !== "ok") return forged("forged", GAI_TEXT[forward.status]);
    addresses = forward.records.map((r) => r.value);
  }
  if (!addresses.some((a) => normalizeAddress(a) === addr)) return forged("forged");
  return result;
}
