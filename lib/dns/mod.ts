// Posthorn's stub resolver. Deno.resolveDns cannot tell NXDOMAIN from SERVFAIL
// and waits long on a dead server; a mail system must tell a permanent from a
// temporary failure, so this asks the name servers itself: UDP with TCP
// fallback on truncation, random query ids and source ports, replies checked
// against the question, timeouts/attempts/rotate from resolv.conf(5), EDNS0
// with the DO bit when DNSSEC is wanted (the AD bit is then reported, as
// Postfix's dns_lookup does), and `posthorn_dns_servers` (main.cf) to point
// every program at a given server instead of resolv.conf's.

import type { Config } from "../config/mod.ts";
import { fatal, warn as logWarning } from "../log.ts";
import { isAddress, validHostname } from "./address.ts";
import {
  canonicalName,
  CLASS_IN,
  defaultFlags,
  DnsFormatError,
  encodeMessage,
  formatIPv6,
  type Message,
  parseIPv4,
  parseIPv6,
  RCODE,
  TYPE,
  typeName,
} from "./message.ts";
import { parseServer, readResolvConf, type ServerAddress } from "./resolv_conf.ts";
import { type Exchange, tcpExchange, udpExchange } from "./transport.ts";

export { parseResolvConf, parseServer, readResolvConf, type ResolvConf } from "./resolv_conf.ts";

/** Record types the resolver looks up. */
export type DnsType = "A" | "AAAA" | "MX" | "TXT" | "PTR" | "NS" | "CNAME" | "TLSA";

/**
 * One answer record. A/AAAA: the address text; MX: the exchange (no trailing
 * dot) with `preference`; TXT: the strings joined; PTR/NS/CNAME: the target
 * name; TLSA: "usage selector mtype hexdata".
 */
export interface DnsRecord {
  name: string;
  type: DnsType;
  ttl: number;
  value: string;
  preference?: number;
}

/** The outcome of one lookup. */
export interface DnsResult {
  /** tempfail: SERVFAIL, REFUSED, FORMERR, timeout, network error. */
  status: "ok" | "nxdomain" | "nodata" | "tempfail";
  /** Postfix's text for the status (dns_strerror). */
  reason: string;
  /** Answers of the asked type, CNAME chains followed. */
  records: DnsRecord[];
  /** The AD bit of the answer (only when DNSSEC was asked for, as Postfix). */
  ad: boolean;
  /**
   * Set (with status "nodata") when the server answered only with records
   * whose host name is malformed (Postfix's DNS_INVAL).
   */
  invalid?: boolean;
}

/** Postfix's texts for the resolver's h_errno values. */
export const REASON = {
  ok: "",
  nxdomain: "Host not found",
  nodata: "Host found but no data record of requested type",
  tempfail: "Host not found, try again",
  norecovery: "Non-recoverable error",
} as const;

/** Resolver options. */
export interface ResolverOptions {
  /** `ip`, `[ip]:port` or `ipv4:port`; default: resolv.conf's name servers. */
  servers?: string[];
  /** Per-try timeout; default resolv.conf's (5 s). */
  timeoutMs?: number;
  /** Tries per server; default resolv.conf's (2). */
  attempts?: number;
  /** The resolv.conf to read (default /etc/resolv.conf). */
  resolvConf?: string;
  /** Send EDNS0 with the DO bit and report the AD bit. */
  dnssec?: boolean;
  /**
   * Where warnings about odd answers go ("numeric domain name in resource
   * data of MX record for ..."); default: the program's log, as Postfix's.
   */
  warn?: (text: string) => void;
  /** Rotate the first server between queries (default: resolv.conf's rotate). */
  rotate?: boolean;
  /**
   * Try resolv.conf's search domains for names with fewer dots than ndots
   * (RES_DEFNAMES/RES_DNSRCH). Postfix turns this off for its lookups, so
   * the default is false.
   */
  search?: boolean;
}

/** How deep a CNAME chain is followed with further queries. */
const MAX_CNAME_HOPS = 8;
/** Our EDNS0 UDP payload size (DNS flag day 2020). */
const EDNS_UDP_SIZE = 1232;

/** The stub resolver. */
export class Resolver {
  readonly servers: ServerAddress[];
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly dnssec: boolean;
  readonly rotate: boolean;
  readonly searchList: string[];
  readonly ndots: number;
  private nextServer = 0;
  private readonly warn: (text: string) => void;

  /**
   * A resolver for a program's configuration: `posthorn_dns_servers` when set,
   * else resolv.conf; DNSSEC when smtp_dns_support_level is "dnssec" (or as
   * `opts` says). Fatal on a malformed `posthorn_dns_servers` entry.
   */
  static fromConfig(config: Config, opts: ResolverOptions = {}): Resolver {
    const listed = config.list("posthorn_dns_servers");
    for (const entry of listed) {
      if (!parseServer(entry)) fatal(`posthorn_dns_servers: bad server address: ${entry}`);
    }
    const options = (config.get("smtp_dns_resolver_options") || "").toLowerCase();
    return new Resolver({
      servers: listed.length ? listed : undefined,
      dnssec: config.get("smtp_dns_support_level") === "dnssec",
      search: /res_defnames|res_dnsrch/.test(options),
      ...opts,
    });
  }

  /** Options override resolv.conf; servers given are validated (throws on a bad one). */
  constructor(opts: ResolverOptions = {}) {
    const conf = readResolvConf(opts.resolvConf);
    if (opts.servers && opts.servers.length) {
      this.servers = opts.servers.map((s) => {
        const parsed = parseServer(s);
        if (!parsed) throw new Error(`bad DNS server address: ${s}`);
        return parsed;
      });
    } else {
      this.servers = conf.servers;
    }
    this.timeoutMs = opts.timeoutMs ?? conf.timeoutMs;
    this.attempts = Math.max(1, opts.attempts ?? conf.attempts);
    this.dnssec = opts.dnssec ?? false;
    this.rotate = opts.rotate ?? conf.rotate;
    this.searchList = opts.search ? conf.search : [];
    this.ndots = conf.ndots;
    this.warn = opts.warn ?? logWarning;
  }

  /** Looks up records of one type for a name. Never throws for DNS trouble. */
  async query(name: string, type: DnsType): Promise<DnsResult> {
    const fqdn = canonicalName(name.trim());
    if (!validName(fqdn)) {
      return { status: "nxdomain", reason: REASON.nxdomain, records: [], ad: false };
    }
    const tries = this.candidates(fqdn);
    let last: DnsResult | undefined;
    for (const candidate of tries) {
      last = await this.lookup(candidate, type, 0);
      if (last.status === "ok" || last.status === "tempfail") return last;
    }
    return last!;
  }

  /** The names to try: search domains only for short names when enabled. */
  private candidates(name: string): string[] {
    if (!this.searchList.length || name.split(".").length - 1 >= this.ndots) return [name];
    return [...this.searchList.map((d) => `${name}.${d}`), name];
  }

  private async lookup(name: string, type: DnsType, depth: number): Promise<DnsResult> {
    const reply = await this.exchange(name, TYPE[type]);
    if ("status" in reply) return reply;
    const ad = this.dnssec && reply.flags.ad;
    if (reply.flags.rcode === RCODE.NXDOMAIN) {
      return { status: "nxdomain", reason: REASON.nxdomain, records: [], ad };
    }
    const chain = followChain(reply, name, type);
    const { dangling } = chain;
    const records = this.saneRecords(name, type, chain.records);
    if (records.length) return { status: "ok", reason: "", records, ad };
    if (chain.records.length) {
      return { status: "nodata", reason: REASON.nodata, records: [], ad, invalid: true };
    }
    if (dangling && depth < MAX_CNAME_HOPS) {
      // The server gave a CNAME but not its target: ask for the target.
      const next = await this.lookup(dangling, type, depth + 1);
      return { ...next, ad: ad && next.ad };
    }
    return { status: "nodata", reason: REASON.nodata, records: [], ad };
  }

  /**
   * Drops records whose host name is malformed and warns about numeric
   * ones, as Postfix's dns_lookup does (a null MX's empty name is kept).
   */
  private saneRecords(name: string, type: DnsType, records: DnsRecord[]): DnsRecord[] {
    if (type !== "MX" && type !== "NS" && type !== "CNAME") return records;
    return records.filter((r) => {
      if (type === "MX" && r.value === "") return true;
      if (isAddress(r.value)) {
        this.warn(`numeric domain name in resource data of ${type} record for ${name}: ${r.value}`);
        return true;
      }
      if (validHostname(r.value)) return true;
      this.warn(`malformed domain name in resource data of ${type} record for ${name}: ${r.value}`);
      return false;
    });
  }

  /** Asks the servers in turn, attempts times, until one gives a usable reply. */
  private async exchange(name: string, qtype: number): Promise<Message | DnsResult> {
    const order = this.serverOrder();
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      for (const server of order) {
        const reply = await this.ask(server, name, qtype, true);
        if (reply.kind !== "answer") continue;
        const rcode = reply.message.flags.rcode;
        if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) return reply.message;
        // SERVFAIL, REFUSED, FORMERR, NOTIMP: another server may do better.
      }
    }
    return { status: "tempfail", reason: REASON.tempfail, records: [], ad: false };
  }

  private serverOrder(): ServerAddress[] {
    if (!this.rotate || this.servers.length < 2) return this.servers;
    const start = this.nextServer++ % this.servers.length;
    return [...this.servers.slice(start), ...this.servers.slice(0, start)];
  }

  /** One query to one server: UDP, then TCP when truncated. */
  private async ask(
    server: ServerAddress,
    name: string,
    qtype: number,
    edns: boolean,
  ): Promise<Exchange> {
    const query: Message = {
      id: randomId(),
      flags: defaultFlags({ rd: true, ad: this.dnssec }),
      questions: [{ name, type: qtype, class: CLASS_IN }],
      answers: [],
      authority: [],
      additional: [],
      edns: this.dnssec && edns ? { udpSize: EDNS_UDP_SIZE, do: true } : undefined,
    };
    let wire: Uint8Array;
    try {
      wire = encodeMessage(query);
    } catch (err) {
      if (err instanceof DnsFormatError) return { kind: "error", reason: err.message };
      throw err;
    }
    let reply = await udpExchange(server, query, wire, this.timeoutMs);
    if (reply.kind === "answer" && reply.message.flags.tc) {
      reply = await tcpExchange(server, query, wire, this.timeoutMs);
    }
    if (
      reply.kind === "answer" && query.edns && reply.message.flags.rcode === RCODE.FORMERR &&
      !reply.message.edns
    ) {
      // A server that does not know EDNS0: ask again without it.
      return this.ask(server, name, qtype, false);
    }
    return reply;
  }
}

/** Walks the answer section from the question name along CNAMEs. */
function followChain(
  reply: Message,
  qname: string,
  type: DnsType,
): { records: DnsRecord[]; dangling?: string } {
  const qtype = TYPE[type];
  let current = canonicalName(qname);
  const seen = new Set<string>();
  for (;;) {
    const matching = reply.answers.filter((rr) =>
      rr.type === qtype && rr.class === CLASS_IN && canonicalName(rr.name) === current
    );
    if (matching.length) {
      return {
        records: matching.map((rr) => ({
          name: canonicalName(rr.name),
          type,
          ttl: rr.ttl,
          value: type === "TXT" || type === "TLSA" ? rr.value : stripDot(rr.value),
          ...(rr.preference !== undefined ? { preference: rr.preference } : {}),
        })),
      };
    }
    const alias = reply.answers.find((rr) =>
      rr.type === TYPE.CNAME && canonicalName(rr.name) === current
    );
    if (!alias || seen.has(current)) return { records: [] };
    seen.add(current);
    const target = canonicalName(alias.value);
    if (!reply.answers.some((rr) => canonicalName(rr.name) === target)) {
      return { records: [], dangling: target };
    }
    current = target;
  }
}

function stripDot(s: string): string {
  return s.length > 1 && s.endsWith(".") ? s.slice(0, -1) : s;
}

/** A name we can put in a query: labels of 1..63 bytes, 253 characters at most. */
function validName(name: string): boolean {
  if (name === "" || name.length > 253) return false;
  return name.split(".").every((l) => l.length > 0 && l.length <= 63);
}

function randomId(): number {
  const b = new Uint16Array(1);
  crypto.getRandomValues(b);
  return b[0];
}

/**
 * The reverse-lookup name of an address: 1.2.3.4 → 4.3.2.1.in-addr.arpa;
 * IPv6 → nibbles under ip6.arpa. Throws on text that is not an address.
 */
export function reverseName(address: string): string {
  if (!address.includes(":")) {
    return `${Array.from(parseIPv4(address)).reverse().join(".")}.in-addr.arpa`;
  }
  const bytes = parseIPv6(address);
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    nibbles.push((bytes[i] & 0xf).toString(16), (bytes[i] >> 4).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}

/** Canonical text of an IPv6 address (RFC 5952), for comparing addresses. */
export function normalizeIPv6(address: string): string {
  return formatIPv6(parseIPv6(address));
}

/** Postfix's "Name service error for name=N type=T: reason" text. */
export function describeFailure(name: string, type: DnsType, result: DnsResult): string {
  return `Name service error for name=${name} type=${type}: ${result.reason}`;
}

export { typeName };
