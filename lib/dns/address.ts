// IP address text helpers shared by the resolver's callers: telling an
// address from a name and comparing addresses written differently.

import { DnsFormatError, formatIPv6, parseIPv4, parseIPv6 } from "./message.ts";

/** The canonical text of an IPv4 or IPv6 address, or undefined when it is not one. */
export function normalizeAddress(text: string): string | undefined {
  try {
    if (!text.includes(":")) return Array.from(parseIPv4(text)).join(".");
    const bytes = parseIPv6(text);
    // An IPv4-mapped address compares equal to the IPv4 one.
    if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
      return Array.from(bytes.slice(12)).join(".");
    }
    return formatIPv6(bytes);
  } catch (err) {
    if (err instanceof DnsFormatError) return undefined;
    throw err;
  }
}

/** True for IPv4 or IPv6 address text. */
export function isAddress(text: string): boolean {
  return normalizeAddress(text) !== undefined;
}

/** True for IPv6 address text. */
export function isIPv6Address(text: string): boolean {
  return text.includes(":") && isAddress(text);
}

/**
 * Host name syntax as Postfix's valid_hostname() checks it: labels of letters,
 * digits, "-" and "_" (not starting or ending with "-"), at most 63 bytes
 * each and 255 in all, and not all-numeric.
 */
export function validHostname(name: string): boolean {
  const trimmed = name.endsWith(".") && !name.endsWith("..") ? name.slice(0, -1) : name;
  if (trimmed === "" || trimmed.length > 255) return false;
  for (const label of trimmed.split(".")) {
    if (label.length === 0 || label.length > 63) return false;
    if (!/^[A-Za-z0-9_-]+$/.test(label) || label.startsWith("-") || label.endsWith("-")) {
      return false;
    }
  }
  return !/^[0-9.]+$/.test(trimmed);
}

/** Host name syntax without the trailing-dot allowance, as Postfix checks names before asking DNS. */
export function strictHostname(name: string): boolean {
  return !name.endsWith(".") && validHostname(name);
}
