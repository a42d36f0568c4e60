// master.cf entries turned into services the master can run: defaults for
// "-" columns (master(5)), the addresses each service is reachable at
// (private/NAME, public/NAME, [host:]port over inet_interfaces), and the
// argument vector the master gives the command.

import { type Config, splitList } from "../../lib/config/mod.ts";
import type { MasterEntry } from "../../lib/config/master_cf.ts";
import { warn } from "../../lib/log.ts";

/** Where a service listens: a unix stream or datagram socket, a fifo, or TCP. */
export type Endpoint =
  | { kind: "unix" | "dgram" | "fifo" | "pass"; path: string; mode: number }
  | { kind: "inet"; host: string; port: number };

/** One master.cf service with its defaults applied. */
export interface Service {
  /** `name/type`: services are identified by both, as in `postconf -M`. */
  key: string;
  name: string;
  type: string;
  private: boolean;
  unprivileged: boolean;
  chroot: boolean;
  /** Seconds between wake-up triggers; 0 for none. */
  wakeup: number;
  /** `N?`: wake up only while the service has processes. */
  wakeupConditional: boolean;
  /** Process limit; 0 for none. */
  maxProc: number;
  command: string;
  /** The arguments after the command, `-o` settings included. */
  args: string[];
  endpoints: Endpoint[];
  /** Everything that, when changed by a reload, restarts the service. */
  fingerprint: string;
  line: number;
}

/** A service Postfix's master refuses to configure, with its wording. */
export class ServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServiceError";
  }
}

/** Builds the service table; throws ServiceError on a service Postfix refuses. */
export function buildServices(entries: MasterEntry[], config: Config): Service[] {
  const services: Service[] = [];
  for (const entry of entries) {
    const service = buildService(entry, config);
    const at = services.findIndex((s) => s.key === service.key);
    if (at >= 0) {
      // Postfix's master: the last entry wins, with a warning.
      warn(
        `duplicate master.cf entry for service "${service.name}" (${serviceLabel(service)}) ` +
          "-- using the last entry",
      );
      services.splice(at, 1);
    }
    services.push(service);
  }
  return services;
}

/** How Postfix's master names a service's address in messages: public/NAME, or the inet name. */
export function serviceLabel(service: Service): string {
  if (service.type === "inet") return service.name;
  return `${service.private ? "private" : "public"}/${service.name}`;
}

function flag(value: string, dflt: boolean): boolean {
  return value === "-" ? dflt : value === "y";
}

function buildService(entry: MasterEntry, config: Config): Service {
  const type = entry.type;
  // master(5): an inet service cannot be private.
  const isPrivate = type === "inet" ? false : flag(entry.private, true);
  const wakeupText = entry.wakeup === "-" ? "0" : entry.wakeup;
  const maxProc = entry.processLimit === "-"
    ? config.int("default_process_limit")
    : parseInt(entry.processLimit, 10);
  const endpoints = type === "inet"
    ? inetEndpoints(entry.service, config)
    : [localEndpoint(entry.service, type, isPrivate, config)];
  const service: Service = {
    key: `${entry.service}/${type}`,
    name: entry.service,
    type,
    private: isPrivate,
    unprivileged: flag(entry.unprivileged, true),
    // Postfix 3.0 and later: chroot defaults to n.
    chroot: flag(entry.chroot, false),
    wakeup: parseInt(wakeupText, 10),
    wakeupConditional: wakeupText.endsWith("?"),
    maxProc,
    command: entry.command,
    args: entry.args,
    endpoints,
    fingerprint: "",
    line: entry.line,
  };
  service.fingerprint = JSON.stringify({ ...service, line: 0 });
  return service;
}

function localEndpoint(name: string, type: string, isPrivate: boolean, config: Config): Endpoint {
  const dir = `${config.get("queue_directory")}/${isPrivate ? "private" : "public"}`;
  const path = `${dir}/${name}`;
  if (type === "fifo") return { kind: "fifo", path, mode: isPrivate ? 0o600 : 0o622 };
  if (type === "unix-dgram") return { kind: "dgram", path, mode: 0o666 };
  if (type === "pass") return { kind: "pass", path, mode: 0o666 };
  // The folder's mode is the access control (private/ 0700, public/ 0711).
  return { kind: "unix", path, mode: 0o666 };
}

/** `smtp`, `2525`, `127.0.0.1:2525`, `[::1]:2525`, `localhost:smtp` → TCP endpoints. */
export function inetEndpoints(name: string, config: Config): Endpoint[] {
  let host = "";
  let portText = name;
  const bracket = /^\[([^\]]+)\]:(.+)$/.exec(name);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2];
  } else if (name.includes(":")) {
    const at = name.lastIndexOf(":");
    host = name.slice(0, at);
    portText = name.slice(at + 1);
  }
  const port = servicePort(portText);
  if (port === undefined) throw new ServiceError(`unknown service: ${portText}/tcp`);
  const hosts = host ? resolveHost(host) : interfaceAddresses(config);
  return hosts.map((h) => ({ kind: "inet" as const, host: h, port }));
}

/** A numeric port, or a name from /etc/services. */
export function servicePort(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const port = Number(text);
    return port <= 65535 ? port : undefined;
  }
  let services = "";
  try {
    services = Deno.readTextFileSync("/etc/services");
  } catch {
    // No services database: only the mail ports Postfix's master.cf names.
    return ({ smtp: 25, submission: 587, submissions: 465, smtps: 465, lmtp: 24 } as Record<
      string,
      number
    >)[text];
  }
  for (const line of services.split("\n")) {
    const words = line.replace(/#.*/, "").trim().split(/\s+/);
    const m = /^(\d+)\/tcp$/.exec(words[1] ?? "");
    if (m && (words[0] === text || words.slice(2).includes(text))) return Number(m[1]);
  }
  return undefined;
}

function wantsIpv4(config: Config): boolean {
  const protocols = config.list("inet_protocols").map((p) => p.toLowerCase());
  return protocols.includes("all") || protocols.includes("ipv4");
}

function wantsIpv6(config: Config): boolean {
  const protocols = config.list("inet_protocols").map((p) => p.toLowerCase());
  return protocols.includes("all") || protocols.includes("ipv6");
}

/** The addresses inet_interfaces names, filtered by inet_protocols. */
function interfaceAddresses(config: Config): string[] {
  const v4 = wantsIpv4(config);
  const v6 = wantsIpv6(config) && hasIpv6();
  const out: string[] = [];
  for (const item of splitList(config.get("inet_interfaces").toLowerCase())) {
    if (item === "all") {
      if (v4) out.push("0.0.0.0");
      if (v6) out.push("::");
    } else if (item === "loopback-only") {
      if (v4) out.push("127.0.0.1");
      if (v6) out.push("::1");
    } else {
      for (const addr of resolveHost(item)) {
        if (addr.includes(":") ? v6 : v4) out.push(addr);
      }
    }
  }
  return [...new Set(out)];
}

function hasIpv6(): boolean {
  try {
    return Deno.readTextFileSync("/proc/net/if_inet6").trim() !== "";
  } catch {
    return false;
  }
}

/** A numeric address as is; `localhost` and /etc/hosts names by lookup. */
function resolveHost(host: string): string[] {
  const bare = host.replace(/^\[|\]$/g, "");
  if (/^[\d.]+$/.test(bare) || bare.includes(":")) return [bare];
  let hosts = "";
  try {
    hosts = Deno.readTextFileSync("/etc/hosts");
  } catch {
    // Fall through to the built-in localhost.
  }
  const found: string[] = [];
  for (const line of hosts.split("\n")) {
    const words = line.replace(/#.*/, "").trim().split(/\s+/);
    if (words.length > 1 && words.slice(1).includes(bare)) found.push(words[0]);
  }
  if (found.length) return found;
  if (bare === "localhost") return ["127.0.0.1"];
  throw new ServiceError(`host not found: ${bare}`);
}

/** The argument vector the master gives a service's command (Postfix's order). */
export function childArgs(service: Service, socketCount: number, verbose: number): string[] {
  const args = ["-n", service.name, "-t", service.type];
  if (service.unprivileged) args.push("-u");
  if (service.chroot) args.push("-c");
  if (socketCount !== 1) args.push("-s", String(socketCount));
  for (let i = 0; i < verbose; i++) args.push("-v");
  return [...args, ...service.args];
}
