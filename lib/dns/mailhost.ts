// "Does this domain exist for mail?" as Postfix's smtpd asks it for
// reject_unknown_sender_domain / reject_unknown_recipient_domain (MX, then A,
// then AAAA) and reject_unknown_helo_hostname (A, AAAA, then MX): the first
// type that answers settles it; a null MX (RFC 7505) and an MX whose host is
// not a host name are reported as such.

import { validHostname } from "./address.ts";
import type { DnsType, Resolver } from "./mod.ts";

/** The outcome: found, not found, a temporary failure, a null MX, or only malformed MX hosts. */
export type MailHostStatus = "ok" | "notfound" | "tempfail" | "nullmx" | "invalid";

/** Looks the name up with each type in turn, stopping at the first success. */
export async function mailHostStatus(
  resolver: Resolver,
  name: string,
  types: DnsType[],
): Promise<MailHostStatus> {
  let tempfail = false;
  let invalid = false;
  for (const type of types) {
    const result = await resolver.query(name, type);
    if (result.status === "tempfail") {
      tempfail = true;
      continue;
    }
    if (result.status !== "ok") continue;
    if (type !== "MX") return "ok";
    if (result.records.length === 1 && result.records[0].value === "") return "nullmx";
    if (result.records.some((r) => r.value !== "" && validHostname(r.value))) return "ok";
    invalid = true;
    break;
  }
  if (tempfail) return "tempfail";
  return invalid ? "invalid" : "notfound";
}
