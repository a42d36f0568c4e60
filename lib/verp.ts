// Variable envelope return paths (VERP_README): checking a pair of VERP
// delimiters against verp_delimiter_filter, and the per-recipient envelope
// sender of a VERP message (owner-list@origin delivered to user@domain goes
// out as owner-list+user=domain@origin with the delimiters `+=`). Shared by
// sendmail, smtpd (XVERP), cleanup, qmgr and bounce.

/**
 * Why `delims` are not acceptable VERP delimiters under `filter`
 * (verp_delimiter_filter), in Postfix's words; null when they are.
 */
export function verpDelimitersError(delims: string, filter: string): string | null {
  if (delims.length !== 2) return "bad VERP delimiter character count";
  if (!filter.includes(delims[0])) return "bad first VERP delimiter character";
  if (!filter.includes(delims[1])) return "bad second VERP delimiter character";
  return null;
}

/**
 * Checks default_verp_delimiters as Postfix checks it at start-up (every
 * program): the length first, then each character against
 * verp_delimiter_filter. Returns the fatal error text, or null.
 */
export function defaultVerpDelimitersError(
  config: { get(name: string): string; configDir: string },
): string | null {
  const delims = config.get("default_verp_delimiters");
  if (delims.length > 2) {
    return `bad string length ${delims.length} > 2: default_verp_delimiters = ${delims}`;
  }
  if (delims.length < 2) {
    return `bad string length ${delims.length} < 2: default_verp_delimiters = ${delims}`;
  }
  const why = verpDelimitersError(delims, config.get("verp_delimiter_filter"));
  if (!why) return null;
  return `file ${config.configDir}/main.cf: parameters default_verp_delimiters and ` +
    `verp_delimiter_filter: ${why}`;
}

/** The recipient of one delivery, as the queue file names it. */
export interface VerpRecipient {
  /** The original recipient ("" when none was recorded). */
  origRcpt: string;
  address: string;
}

/**
 * The envelope sender of one recipient's delivery: the sender's local part,
 * the first delimiter, the recipient's local part, the second delimiter and
 * its domain (left out with the delimiter when the recipient has no domain),
 * then `@` and the sender's domain (when it has one). The original
 * recipient is used when there is one: that is the address the list knows.
 */
export function verpSender(delims: string, sender: string, rcpt: VerpRecipient): string {
  const recipient = rcpt.origRcpt || rcpt.address;
  const [senderLocal, senderDomain] = splitAt(sender);
  const [rcptLocal, rcptDomain] = splitAt(recipient);
  let out = senderLocal + delims[0] + rcptLocal;
  if (rcptDomain) out += delims[1] + rcptDomain;
  if (senderDomain) out += "@" + senderDomain;
  return out;
}

/** Local part and domain at the last `@`; the domain is "" when there is none. */
function splitAt(address: string): [string, string] {
  const at = address.lastIndexOf("@");
  return at < 0 ? [address, ""] : [address.slice(0, at), address.slice(at + 1)];
}
