// resolv.conf(5) reader for the stub resolver: nameserver, search/domain and
// the options timeout:, attempts:, rotate, ndots:, edns0, as the C library
// reads them (at most three name servers, later search/domain lines win).

/** A name server address and port. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** What resolv.conf says. */
export interface ResolvConf {
  servers: ServerAddress[];
  search: string[];
  ndots: number;
  timeoutMs: number;
  attempts: number;
  rotate: boolean;
}

/** The C library's limits and defaults (resolv.conf(5)). */
const MAX_SERVERS = 3;
const DEFAULTS: ResolvConf = {
  servers: [],
  search: [],
  ndots: 1,
  timeoutMs: 5000,
  attempts: 2,
  rotate: false,
};

/** Parses resolv.conf text; unknown lines are ignored as the C library does. */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { ...DEFAULTS, servers: [], search: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const [key, ...args] = line.split(/\s+/);
    if (key === "nameserver" && args[0] && conf.servers.length < MAX_SERVERS) {
      const server = parseServer(args[0], 53);
      if (server) conf.servers.push(server);
    } else if (key === "search") {
      conf.search = args.map((d) => d.replace(/\.$/, "")).filter((d) => d);
    } else if (key === "domain" && args[0]) {
      conf.search = [args[0].replace(/\.$/, "")];
    } else if (key === "options") {
      for (const opt of args) applyOption(conf, opt);
    }
  }
  const env = Deno.env.get("RES_OPTIONS");
  if (env) { for (const opt of env.trim().split(/\s+/)) applyOption(conf, opt); }
  return conf;
}

/** Applies one `options` word; limits as resolv.conf(5) documents. */
function applyOption(conf: ResolvConf, opt: string): void {
  const [name, value] = opt.split(":", 2);
  const n = Number(value);
  if (name === "timeout" && Number.isInteger(n) && n >= 0) {
    conf.timeoutMs = Math.min(Math.max(n, 1), 30) * 1000;
  } else if (name === "attempts" && Number.isInteger(n) && n >= 0) {
    conf.attempts = Math.min(Math.max(n, 1), 5);
  } else if (name === "ndots" && Number.isInteger(n) && n >= 0) {
    conf.ndots = Math.min(n, 15);
  } else if (name === "rotate") {
    conf.rotate = true;
  }
}

/** Reads resolv.conf; a missing file means the defaults with 127.0.0.1. */
export function readResolvConf(path = "/etc/resolv.conf"): ResolvConf {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    // No file: the C library then asks the local host.
  }
  const conf = parseResolvConf(text);
  if (conf.servers.length === 0) conf.servers.push({ host: "127.0.0.1", port: 53 });
  return conf;
}

/**
 * Parses `ip`, `[ip]:port`, `[ip]` or `ipv4:port` (the forms of
 * posthorn_dns_servers). Returns undefined for anything else.
 */
export function parseServer(text: string, defaultPort = 53): ServerAddress | undefined {
  let host = text;
  let port = defaultPort;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (/^[\d.]+:\d+$/.test(text)) {
    const at = text.lastIndexOf(":");
    host = text.slice(0, at);
    port = Number(text.slice(at + 1));
  }
  if (!isIPv4(host) && !isIPv6(host)) return undefined;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** True for a dotted-quad IPv4 address. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** True for IPv6 address text (a cheap shape check; the codec validates). */
export function isIPv6(text: string): boolean {
  return text.includes(":") && /^[0-9a-fA-F:.%a-zA-Z]+$/.test(text);
}
