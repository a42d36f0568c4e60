// Address forms: the internal form (local part unquoted, as queue files and
// tables hold addresses) and the external form (local part quoted where RFC
// 5321/5322 requires it, as SMTP and headers carry them). Postfix's
// quote_822_local and unquote_822_local do the same conversions.

const LOCAL_SPECIALS = '()<>@,;:\\".[]';

/** An address split at its last `@`; `domain` is "" when there is no `@`. */
export interface AddressParts {
  local: string;
  domain: string;
  /** Whether the address had an `@` at all (`user@` has one, with an empty domain). */
  hasAt: boolean;
}

/** Splits an internal-form address at its last `@` (the local part may hold `@`). */
export function splitAddress(address: string): AddressParts {
  const at = address.lastIndexOf("@");
  if (at < 0) return { local: address, domain: "", hasAt: false };
  return { local: address.slice(0, at), domain: address.slice(at + 1), hasAt: true };
}

/**
 * Whether a local part is an RFC 5321 Dot-string: atoms of allowed characters
 * joined by single dots. 8-bit characters are allowed (SMTPUTF8).
 */
export function isDotString(local: string): boolean {
  if (local === "") return false;
  for (let i = 0; i < local.length; i++) {
    const ch = local[i];
    const code = local.charCodeAt(i);
    if (ch === ".") {
      // RFC 5321 4.1.2: no leading, trailing or doubled dot in a Dot-string.
      if (i === 0 || i === local.length - 1 || local[i - 1] === ".") return false;
      continue;
    }
    if (code <= 0x20 || code === 0x7f || LOCAL_SPECIALS.includes(ch)) return false;
  }
  return true;
}

/** Quotes a local part as an RFC 5321 Quoted-string: `"` and `\` get a backslash. */
export function quoteString(text: string): string {
  return '"' + text.replace(/["\\]/g, (ch) => "\\" + ch) + '"';
}

/**
 * The external form of an internal address: the local part (everything before
 * the last `@`) quoted when it is not a Dot-string. The null address stays
 * empty.
 */
export function quoteAddress(address: string): string {
  if (address === "") return "";
  const { local, domain, hasAt } = splitAddress(address);
  if (isDotString(local)) return address;
  return quoteString(local) + (hasAt ? "@" + domain : "");
}

/**
 * The internal form of an external address: quotes around (parts of) the
 * local part removed and backslash escapes undone; the domain is kept as is.
 * The domain starts at the last `@` outside quotes.
 */
export function unquoteAddress(address: string): string {
  let domainAt = -1;
  let quoted = false;
  for (let i = 0; i < address.length; i++) {
    const ch = address[i];
    if (ch === "\\") i++;
    else if (ch === '"') quoted = !quoted;
    else if (ch === "@" && !quoted) domainAt = i;
  }
  const localEnd = domainAt < 0 ? address.length : domainAt;
  let local = "";
  for (let i = 0; i < localEnd; i++) {
    const ch = address[i];
    if (ch === "\\" && i + 1 < localEnd) local += address[++i];
    else if (ch !== '"') local += ch;
  }
  return local + address.slice(localEnd);
}

/** Alias names matching Postfix's vocabulary: externalize = quote. */
export const externalize: (address: string) => string = quoteAddress;
/** Alias names matching Postfix's vocabulary: internalize = unquote. */
export const internalize: (address: string) => string = unquoteAddress;
