// "Does this domain exist for mail?" as Postfix's smtpd asks it for
// reject_unknown_sender_domain / reject_unknown_recipient_domain (MX, then A,
// then AAAA) and reject_unknown_helo_hostname (A, AAAA, then MX): the first
// type that answers settles it; a null MX (RFC 7505) is reported as such, and
// so is an answer with only malformed host names (which ends the search when
// `stopInvalid`, as Postfix's DNS_REQ_FLAG_STOP_INVAL).

import { isAddress, strictHostname } from "./address.ts";
import type { DnsType, Resolver } from "./mod.ts";

/** The outcome: found, not found, a temporary failure, a null MX, or only malformed MX hosts. */
export type MailHostStatus = "ok" | "notfound" | "tempfail" | "nullmx" | "invalid";

/** Looks the name up with each type in turn, stopping at the first success. */
export async function mailHostStatus(
  resolver: Resolver,
  name: string,
  types: DnsType[],
  stopInvalid = true,
): Promise<MailHostStatus> {
  // A malformed name (a trailing dot included) is not asked about: not found.
  if (!strictHostname(name) && !isAddress(name)) return "notfound";
  let tempfail = false;
  let invalid = false;
  for (const type of types) {
    const result = await resolver.query(name, type);
    if (result.status === "tempfail") {
      tempfail = true;
      continue;
    }
    if (result.invalid) {
      invalid = true;
      if (stopInvalid) break;
    }
    if (result.status !== "ok") continue;
    if (type === "MX" && result.records.length === 1 && result.records[0].value === "") {
      return "nullmx";
    }
    return "ok";
  }
  if (tempfail) return "tempfail";
  return invalid ? "invalid" : "notfound";
}
