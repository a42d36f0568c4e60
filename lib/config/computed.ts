// Defaults that Postfix computes on the host instead of compiling in:
// myhostname, mydomain, mynetworks, process_id, process_name,
// config_directory.

import { logSettings } from "../log.ts";

/** The fully-qualified host name: gethostname(), with ".localdomain" when it has no dot. */
export function hostName(): string {
  let name = "localhost";
  try {
    name = Deno.hostname();
  } catch {
    // keep localhost
  }
  return name.includes(".") ? name : `${name}.localdomain`;
}

/** The computed defaults for this process. */
export function computedDefaults(configDir: string, program?: string): Record<string, string> {
  const myhostname = hostName();
  const dot = myhostname.indexOf(".");
  return {
    myhostname,
    mydomain: dot > 0 ? myhostname.slice(dot + 1) : "localdomain",
    process_id: String(Deno.pid),
    process_name: program ?? logSettings().program,
    config_directory: configDir,
  };
}

/**
 * mynetworks for a mynetworks_style: `host` lists each local address, `subnet`
 * each local network, `class` each address's whole class A/B/C network.
 */
export function localNetworks(style: string): string {
  const nets = new Set<string>();
  let interfaces: Deno.NetworkInterfaceInfo[] = [];
  try {
    interfaces = Deno.networkInterfaces();
  } catch {
    // no permission or no interfaces: loopback only below
  }
  if (interfaces.length === 0) {
    interfaces = [{
      family: "IPv4",
      name: "lo",
      address: "127.0.0.1",
      netmask: "255.0.0.0",
      scopeid: null,
      cidr: "127.0.0.1/8",
      mac: "",
    }];
  }
  for (const nic of interfaces) {
    const [address, bits] = nic.cidr.split("/");
    const prefix = parseInt(bits, 10);
    if (nic.family === "IPv4") {
      const len = style === "host" ? 32 : style === "class" ? classPrefix(address) : prefix;
      nets.add(`${maskV4(address, len)}/${len}`);
    } else {
      const len = style === "host" ? 128 : prefix;
      nets.add(`[${maskV6(address, len)}]/${len}`);
    }
  }
  return [...nets].join(" ");
}

function classPrefix(address: string): number {
  const first = parseInt(address, 10);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

function maskV4(address: string, len: number): string {
  const n = address.split(".").reduce((acc, part) => acc * 256 + parseInt(part, 10), 0);
  const masked = len === 0 ? 0 : (n & (~0 << (32 - len))) >>> 0;
  return [24, 16, 8, 0].map((s) => (masked >>> s) & 255).join(".");
}

function maskV6(address: string, len: number): string {
  const [head, tail = ""] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t]
    : h;
  const words = groups.map((g) => parseInt(g || "0", 16));
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, len - i * 16));
    words[i] = keep === 0 ? 0 : words[i] & (0xffff << (16 - keep)) & 0xffff;
  }
  return compressV6(words);
}

/** RFC 5952 text form: the longest run of two or more zero words becomes "::". */
function compressV6(words: number[]): string {
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
