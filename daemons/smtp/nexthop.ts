// From a delivery request's next hop to the list of server addresses to try,
// as smtp(8) and lmtp(8) describe: `domain` (MX lookup, preference order,
// random among equal preference, A/AAAA when there is no MX), `[host]` (no
// MX), `domain:port`, `[host]:port`, a list of such destinations, then
// smtp_fallback_relay; LMTP's `unix:/path`, `inet:host:port` and `host`.
// MX hosts at or after the preference of one that is this machine are
// dropped; when the best MX is this machine, the mail loops back.

import { isIP } from "node:net";
import type { SmtpSettings } from "./settings.ts";
import { portNumber } from "./settings.ts";

/** The resolver results this module works with (lib/dns's shapes). */
export interface DnsAnswer {
  status: "ok" | "nxdomain" | "nodata" | "tempfail";
  reason: string;
  records: { name: string; type: string; ttl: number; value: string; preference?: number }[];
  /** The answer was DNSSEC-validated (AD bit; only when DNSSEC was asked for). */
  ad?: boolean;
}

/** A DNS lookup function (lib/dns Resolver.query, or a test's). */
export interface DnsLookup {
  query(name: string, type: "A" | "AAAA" | "MX" | "TLSA"): Promise<DnsAnswer>;
}

/** Host lookup by the system's resolver (smtp_host_lookup = native). */
export type NativeLookup = (host: string) => Promise<string[]>;

/** One server address to try. */
export interface ServerAddress {
  /** The host name as logged (`mx1.example.com`, or the literal). */
  host: string;
  /** IP address, or the socket path for unix-domain LMTP. */
  addr: string;
  port: number;
  /** Whether this is a unix-domain socket (LMTP). */
  unix: boolean;
  /** MX preference (0 without MX). */
  pref: number;
}

/** A destination that could not be resolved. */
export interface ResolveFailure {
  dsn: string;
  text: string;
  /** Whether to try again later (4.x.x) rather than bounce. */
  soft: boolean;
}

/** One destination parsed from a next-hop entry. */
export interface Destination {
  /** The destination as written (`[mail.example]:587`): SASL and TLS policy tables are keyed by it. */
  text: string;
  /** The name as given, without brackets and port. */
  name: string;
  port: number;
  /** Whether MX lookup applies (not bracketed, SMTP, DNS lookups on). */
  mx: boolean;
  /** unix-domain socket path (LMTP). */
  path?: string;
}

/** Splits a next-hop list into destinations (commas or white space separate them). */
export function parseNexthop(nexthop: string, s: SmtpSettings): Destination[] {
  return nexthop.split(/[\s,]+/).filter(Boolean).map((d) => parseDestination(d, s));
}

/** Parses one destination in the protocol's forms; throws on a bad port. */
export function parseDestination(text: string, s: SmtpSettings): Destination {
  let d = text;
  if (s.lmtp) {
    if (d.startsWith("unix:")) {
      return { text, name: d.slice(5), port: 0, mx: false, path: d.slice(5) };
    }
    if (d.startsWith("inet:")) d = d.slice(5);
  } else if (d.startsWith("inet:")) d = d.slice(5);
  let port = s.tcpPort;
  let bracketed = false;
  let name = d;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(d);
  if (bracket) {
    bracketed = true;
    name = bracket[1].replace(/^ipv6:/i, "");
    if (bracket[2] !== undefined) port = checkedPort(bracket[2], text);
  } else {
    // A bare IPv6 address has colons of its own and takes no port.
    const colon = d.lastIndexOf(":");
    if (colon > 0 && !isIP(d)) {
      name = d.slice(0, colon);
      port = checkedPort(d.slice(colon + 1), text);
    }
  }
  const dnsOn = s.hostLookup.includes("dns");
  return { text, name, port, mx: !s.lmtp && !bracketed && dnsOn && !isIP(name) };
}

function checkedPort(text: string, dest: string): number {
  const port = portNumber(text);
  if (port === undefined) throw new Error(`bad port in destination: ${dest}`);
  return port;
}

/** What the resolution needs besides settings. */
export interface ResolveDeps {
  dns: DnsLookup;
  native: NativeLookup;
  /** This machine's addresses, for the MX loop check. */
  ownAddresses: Set<string>;
  /** Shuffles equal-preference entries (tests make it the identity). */
  shuffle?: <T>(items: T[]) => T[];
}

/** Addresses for one destination, or why there are none. */
export async function resolveDestination(
  dest: Destination,
  s: SmtpSettings,
  deps: ResolveDeps,
): Promise<ServerAddress[] | ResolveFailure> {
  if (dest.path !== undefined) {
    // Postfix names a unix-domain LMTP server after this machine: myhostname[path].
    return [{ host: s.myhostname, addr: dest.path, port: 0, unix: true, pref: 0 }];
  }
  if (isIP(dest.name)) {
    return [{ host: dest.name, addr: dest.name, port: dest.port, unix: false, pref: 0 }];
  }
  if (dest.mx) return await resolveMx(dest, s, deps);
  const hosts = await hostAddresses(dest.name, s, deps);
  if (!Array.isArray(hosts)) return hosts;
  return hosts.map((addr) => ({ host: dest.name, addr, port: dest.port, unix: false, pref: 0 }));
}

async function resolveMx(
  dest: Destination,
  s: SmtpSettings,
  deps: ResolveDeps,
): Promise<ServerAddress[] | ResolveFailure> {
  const mx = await deps.dns.query(dest.name, "MX");
  if (mx.status === "tempfail") return nameError(dest.name, "MX", mx.reason, true);
  const mxRecords = mx.status === "ok" ? mx.records.filter((r) => r.type === "MX") : [];
  if (!mxRecords.length) {
    if (mx.status === "nxdomain") return nameError(dest.name, "MX", mx.reason, false);
    // No MX: the domain's own addresses, as RFC 5321 5.1 says.
    const hosts = await hostAddresses(dest.name, s, deps);
    if (!Array.isArray(hosts)) return hosts;
    return hosts.map((addr) => ({ host: dest.name, addr, port: dest.port, unix: false, pref: 0 }));
  }
  // RFC 7505 null MX: the domain accepts no mail.
  if (mxRecords.length === 1 && (mxRecords[0].value === "" || mxRecords[0].value === ".")) {
    return {
      dsn: "5.1.0",
      text: `Domain ${dest.name} does not accept mail (nullMX)`,
      soft: false,
    };
  }
  const shuffle = deps.shuffle ?? shuffled;
  const byPref = new Map<number, string[]>();
  for (const r of mxRecords) {
    const p = r.preference ?? 0;
    byPref.set(p, [...(byPref.get(p) ?? []), r.value.replace(/\.$/, "")]);
  }
  const prefs = [...byPref.keys()].sort((a, b) => a - b);
  const out: ServerAddress[] = [];
  let lastFailure: ResolveFailure | undefined;
  let selfPref: number | undefined;
  for (const pref of prefs) {
    if (selfPref !== undefined && pref >= selfPref) break;
    for (const host of shuffle(byPref.get(pref)!)) {
      const addrs = await hostAddresses(host, s, deps);
      if (!Array.isArray(addrs)) {
        lastFailure = addrs;
        continue;
      }
      if (addrs.some((a) => deps.ownAddresses.has(a))) {
        // This machine is an MX host: only better-preference hosts remain.
        selfPref = selfPref === undefined ? pref : Math.min(selfPref, pref);
        continue;
      }
      for (const addr of addrs) out.push({ host, addr, port: dest.port, unix: false, pref });
    }
  }
  // A host found at the self preference was added before the self host was seen.
  const kept = selfPref === undefined ? out : out.filter((a) => a.pref < selfPref!);
  if (!kept.length && selfPref !== undefined) {
    return { dsn: "5.4.6", text: `mail for ${dest.name} loops back to myself`, soft: false };
  }
  if (!kept.length) {
    return lastFailure ?? {
      dsn: "4.4.4",
      text: `MX host for ${dest.name} has no address`,
      soft: true,
    };
  }
  return kept;
}

/** The addresses of a host by smtp_host_lookup and inet_protocols, IPv6/IPv4 per RFC order. */
async function hostAddresses(
  host: string,
  s: SmtpSettings,
  deps: ResolveDeps,
): Promise<string[] | ResolveFailure> {
  let failure: ResolveFailure | undefined;
  for (const method of s.hostLookup) {
    if (method === "dns") {
      const got = await dnsHost(host, s, deps.dns);
      if (Array.isArray(got)) return got;
      failure = got;
    } else if (method === "native") {
      try {
        const addrs = (await deps.native(host)).filter((a) =>
          (isIP(a) === 4 && s.inetProtocols.includes("ipv4")) ||
          (isIP(a) === 6 && s.inetProtocols.includes("ipv6"))
        );
        if (addrs.length) return addrs;
        failure = nameError(host, "A", "Host not found", false);
      } catch {
        failure = nameError(host, "A", "Host not found, try again", true);
      }
    }
  }
  return failure ?? nameError(host, "A", "Host not found", false);
}

async function dnsHost(
  host: string,
  s: SmtpSettings,
  dns: DnsLookup,
): Promise<string[] | ResolveFailure> {
  // smtp_address_preference: the preferred family's addresses first.
  const types: ("A" | "AAAA")[] = [];
  if (s.inetProtocols.includes("ipv6")) types.push("AAAA");
  if (s.inetProtocols.includes("ipv4")) types.push("A");
  if (s.addressPreference === "ipv4") types.reverse();
  const addrs: string[] = [];
  let failed: { type: "A" | "AAAA"; reason: string; soft: boolean } | undefined;
  for (const type of types) {
    const got = await dns.query(host, type);
    // A temporary failure outweighs a definite "no such name" for the other type.
    if (got.status !== "ok" && (!failed || !failed.soft)) {
      failed = { type, reason: got.reason, soft: got.status === "tempfail" };
    }
    for (const r of got.records) if (r.type === type) addrs.push(r.value);
  }
  if (addrs.length) return addrs;
  return nameError(host, failed?.type ?? "A", failed?.reason ?? "Host not found", !!failed?.soft);
}

function nameError(name: string, type: string, why: string, soft: boolean): ResolveFailure {
  return {
    dsn: soft ? "4.4.3" : "5.4.4",
    text: `Host or domain name not found. Name service error for name=${name} type=${type}: ${why}`,
    soft,
  };
}

/** A copy in random order (equal-preference MX hosts are tried in random order). */
export function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** This machine's addresses per inet_interfaces and proxy_interfaces. */
export function ownAddresses(s: SmtpSettings): Set<string> {
  const out = new Set<string>();
  const add = (list: string[]) => {
    for (const item of list) {
      if (item === "all") {
        for (const ni of Deno.networkInterfaces()) out.add(ni.address);
      } else if (item === "loopback-only" || item === "localhost") {
        out.add("127.0.0.1");
        out.add("::1");
      } else if (isIP(item.replace(/^\[|\]$/g, ""))) out.add(item.replace(/^\[|\]$/g, ""));
    }
  };
  add(s.inetInterfaces);
  add(s.proxyInterfaces);
  return out;
}
