// Syntax checks of the recipient domain, as Postfix's valid_hostname,
// valid_hostaddr and valid_mailhost_literal: a name of letters, digits,
// hyphens and underscores in labels of at most 63 characters, at most 255 in
// all, not all numeric; or an address literal [1.2.3.4] / [IPv6:...].

import { normalizeIp } from "./domains.ts";

const MAX_LABEL = 63;
const MAX_NAME = 255;

/** Whether `name` is a valid host name; 8-bit labels pass only with SMTPUTF8. */
export function isValidHostname(name: string, utf8: boolean): boolean {
  if (name === "" || name.length > MAX_NAME) return false;
  let numeric = true;
  for (const label of name.split(".")) {
    if (label === "" || label.length > MAX_LABEL) return false;
    if (label.startsWith("-") || label.endsWith("-")) return false;
    for (const ch of label) {
      if (/[0-9]/.test(ch)) continue;
      numeric = false;
      if (/[A-Za-z_-]/.test(ch)) continue;
      if (utf8 && ch.charCodeAt(0) > 0x7f) continue;
      return false;
    }
  }
  return !numeric;
}

/** Whether `text` is an IPv4 or IPv6 address. */
export function isValidHostAddr(text: string): boolean {
  return normalizeIp(text) !== undefined;
}

/** Whether `literal` is [ipv4] or [IPv6:ipv6] (the IPv6: tag in any case). */
export function isValidMailhostLiteral(literal: string): boolean {
  if (!literal.startsWith("[") || !literal.endsWith("]")) return false;
  const inner = literal.slice(1, -1);
  if (/^ipv6:/i.test(inner)) {
    const ip = inner.slice(5);
    return ip.includes(":") && normalizeIp(ip) !== undefined;
  }
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(inner) && normalizeIp(inner) !== undefined;
}
