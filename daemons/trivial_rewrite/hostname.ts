// Syntax checks of the recipient domain, as Postfix's valid_hostname,
// valid_hostaddr and valid_mailhost_literal: a name of letters, digits,
// hyphens and underscores in labels of at most 63 characters, at most 255 in
// all, not all numeric; or an address literal [1.2.3.4] / [IPv6:...].

import { warn } from "../../lib/log.ts";
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

/** A dotted quad; with `gripe`, the reason it is not one is logged as Postfix words it. */
export function isValidIpv4(text: string, gripe: boolean): boolean {
  const complain = (why: string) => {
    if (gripe) warn(`valid_ipv4_hostaddr: ${why}: ${text}`);
    return false;
  };
  let octets = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch >= "0" && ch <= "9") {
      if (digits++ === 0) octets++;
      value = value * 10 + Number(ch);
      if (value > 255) return complain("invalid octet value");
    } else if (ch === ".") {
      if (digits === 0 || i === text.length - 1) return complain("misplaced dot");
      digits = 0;
      value = 0;
    } else {
      return complain(`invalid character ${text.charCodeAt(i)}(decimal)`);
    }
  }
  if (octets !== 4) return complain("invalid octet count");
  return true;
}

/** An IPv6 address; with `gripe`, a stray character is logged as Postfix words it. */
export function isValidIpv6(text: string, gripe: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    if (!/[0-9a-fA-F:.]/.test(text[i])) {
      if (gripe) {
        warn(
          `valid_ipv6_hostaddr: invalid character ${
            text.charCodeAt(i)
          }(decimal) in IPv6 address: ${text}`,
        );
      }
      return false;
    }
  }
  return text.includes(":") && normalizeIp(text) !== undefined;
}

/** Whether `literal` is [ipv4] or [IPv6:ipv6] (the IPv6: tag in any case). */
export function isValidMailhostLiteral(literal: string, gripe: boolean): boolean {
  if (!literal.startsWith("[") || !literal.endsWith("]")) return false;
  const inner = literal.slice(1, -1);
  if (/^ipv6:/i.test(inner)) return isValidIpv6(inner.slice(5), gripe);
  return isValidIpv4(inner, gripe);
}
