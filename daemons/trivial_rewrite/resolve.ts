// Resolving a recipient, trivial-rewrite(8)'s "resolve" and "resolve_verify"
// requests: strip local domains and routing operators until a remote domain
// or a bare local part is left, then classify the domain (local, virtual
// alias, virtual mailbox, relay, default) and pick the transport and next
// hop, which transport_maps may override and relocated_maps may turn into a
// bounce. The answer carries Postfix's RESOLVE_FLAG_* and RESOLVE_CLASS_* bits.
//
// "resolve_verify" differs only in its parameters: address_verify_*
// (address_verify_relayhost, address_verify_transport_maps, ...).

import { quoteAddress } from "../../lib/address/mod.ts";
import type { Settings } from "./settings.ts";
import { ResolveFlag, type ResolveResult } from "../../lib/rewrite_client.ts";
import { type Dict, DictError, searchRelocated, type SearchResult } from "../../maps/mod.ts";
import { warn } from "../../lib/log.ts";
import { rewriteTokens } from "./canonical.ts";
import { type AddrToken, internalize, lastOf, scanAddress } from "./tokens.ts";
import { applyTransportEntry, searchTransportFor } from "./transport.ts";
import { isValidHostAddr, isValidHostname, isValidMailhostLiteral } from "./hostname.ts";

export type { Settings };

const CHANNEL_NOT_UPDATED = "CHANNEL NOT UPDATED";
const NEXTHOP_NOT_UPDATED = "NEXTHOP NOT UPDATED";
const NEXTRCPT_NOT_UPDATED = "NEXTRCPT NOT UPDATED";

/** The recipient after local domains and routing are stripped, and how that went. */
interface Stripped {
  tokens: AddrToken[];
  /** The remote domain's "@" index, or -1 when the address ended local. */
  remoteAt: number;
  flags: number;
  /** The recipient Postfix makes of a quoted local part with @ or % inside (see crackQuoted). */
  mangled?: string;
}

/** Resolves `address` (internal form) for `sender` with the request's parameters. */
export async function resolveAddress(
  s: Settings,
  verify: boolean,
  sender: string,
  address: string,
): Promise<ResolveResult> {
  const result: ResolveResult = {
    transport: CHANNEL_NOT_UPDATED,
    nexthop: NEXTHOP_NOT_UPDATED,
    recipient: "",
    flags: 0,
  };
  try {
    return await decide(s, verify ? s.verify : s.regular, sender, address, result);
  } catch (err) {
    // A table failed: the answer so far goes back with FAIL, the client retries later.
    if (!(err instanceof LookupFailed)) throw err;
    return fail(result);
  }
}

/** A table lookup failed (Postfix's dict error): resolution stops here. */
class LookupFailed extends Error {}

/** Logs "NAME lookup failure" and stops resolution. */
function lookupFailure(name: string): never {
  warn(`${name} lookup failure`);
  throw new LookupFailed(name);
}

async function decide(
  s: Settings,
  p: Settings["regular"],
  sender: string,
  address: string,
  result: ResolveResult,
): Promise<ResolveResult> {
  const stripped = await stripLocal(s, address);
  result.flags |= stripped.flags;
  // A failed mydestination lookup stops resolution before there is a recipient.
  if (result.flags & ResolveFlag.FAIL) {
    result.recipient = NEXTRCPT_NOT_UPDATED;
    return result;
  }
  if (stripped.remoteAt < 0) appendLocalDomain(s, stripped);
  let local = stripped.remoteAt < 0;
  if (stripped.mangled !== undefined) {
    result.recipient = stripped.mangled;
    return syntaxError(result);
  }
  // The address came in internal form: literal quotes in it stay (resolve_dequoted_address).
  result.recipient = internalize(stripped.tokens, s.resolveDequoted);

  // The domain is what follows the last @ of the recipient as a string.
  let at = result.recipient.lastIndexOf("@");
  let rcptDomain = result.recipient.slice(at + 1);
  if (rcptDomain.startsWith("[")) {
    if (!isValidMailhostLiteral(rcptDomain, true)) return syntaxError(result);
  } else if (!isValidHostname(rcptDomain, s.smtputf8)) {
    if (!s.resolveNumericDomain || !isValidHostAddr(rcptDomain)) return syntaxError(result);
    result.recipient = `${result.recipient.slice(0, at + 1)}[${rcptDomain}]`;
    at = result.recipient.lastIndexOf("@");
    rcptDomain = result.recipient.slice(at + 1);
    const status = await s.local.isLocal(rcptDomain);
    if (status === "error") lookupFailure("mydestination");
    if (status === "match") local = true;
  }

  // Routing operators left in the local part: sender-specified routing.
  if (/[@%!]/.test(result.recipient.slice(0, at))) result.flags |= ResolveFlag.ROUTED;
  let blame = "";
  if (!local) {
    blame = await routeRemote(s, p, sender, rcptDomain, result);
  } else {
    await nagBoth(s, rcptDomain, "mydestination", [
      ["virtual_alias_domains", s.virtualAliasDomains],
      ["virtual_mailbox_domains", s.virtualMailboxDomains],
    ]);
    result.transport = p.localTransport;
    result.nexthop = rcptDomain;
    blame = p.names.localTransport;
    result.flags |= ResolveFlag.CLASS_LOCAL;
  }
  // An explicit transport:nexthop in main.cf overrides the next hop.
  const colon = result.transport.indexOf(":");
  if (colon >= 0) {
    const dest = result.transport.slice(colon + 1);
    result.transport = result.transport.slice(0, colon);
    if (dest) result.nexthop = dest;
  }
  if (result.transport === "") {
    warn(
      `file ${s.configDir}/main.cf: parameter ${blame}: null transport is not allowed`,
    );
    return fail(result);
  }
  await overrides(s, p, rcptDomain, result);
  // A recipient that starts with "-" could pass for a command-line option.
  if (!s.allowMinUser && result.recipient.startsWith("-")) result.flags |= ResolveFlag.ERROR;
  return result;
}

function syntaxError(result: ResolveResult): ResolveResult {
  result.flags |= ResolveFlag.ERROR | ResolveFlag.CLASS_DEFAULT;
  return result;
}

function fail(result: ResolveResult): ResolveResult {
  result.flags |= ResolveFlag.FAIL;
  return result;
}

/**
 * The resolver loop: drop trailing dots and (with resolve_null_domain) a
 * trailing @, strip a local @domain and remember it, rewrite what is left
 * when it still routes (@, %, !), crack a quoted local part open
 * (resolve_dequoted_address), and stop at a remote domain or a bare local
 * part (the empty one becoming MAILER-DAEMON).
 */
async function stripLocal(s: Settings, address: string): Promise<Stripped> {
  let tokens = scanAddress(s.resolveDequoted ? address : quoteAddress(address));
  let saved: AddrToken[] | undefined;
  const limit = address.length + 100;
  for (let loop = 0;; loop++) {
    if (loop > limit) {
      warn(`resolve_addr: <${address}>: giving up after ${loop} iterations`);
      return { tokens, remoteAt: -1, flags: ResolveFlag.FAIL };
    }
    trimTail(s, tokens);
    const at = lastOf(tokens, "@");
    if (at >= 0) {
      if (at < tokens.length - 1) {
        const status = await s.local.isLocal(internalize(tokens.slice(at + 1)));
        if (status === "error") return { tokens, remoteAt: at, flags: ResolveFlag.FAIL };
        if (status === "none") return { tokens, remoteAt: at, flags: 0 };
      }
      saved = tokens.slice(at);
      tokens = tokens.slice(0, at);
    }
    if (routes(s, tokens)) {
      rewriteTokens(tokens, s.localContext, s.canonical);
      continue;
    }
    const cracked = crackQuoted(s, tokens);
    if (typeof cracked === "string") return { tokens, remoteAt: -1, flags: 0, mangled: cracked };
    if (cracked) {
      tokens = cracked;
      continue;
    }
    // An empty local part stands for the local MAILER-DAEMON.
    if (tokens.length === 0) tokens = scanAddress("MAILER-DAEMON");
    if (saved) tokens.push(...saved);
    return { tokens, remoteAt: -1, flags: 0 };
  }
}

/** Drops one trailing dot after a domain, and a trailing @ with resolve_null_domain. */
function trimTail(s: Settings, tokens: AddrToken[]): void {
  const n = tokens.length;
  if (
    n > 1 && tokens[n - 1].type === "." && lastOf(tokens, "@") >= 0 &&
    tokens[n - 2].type !== "." && tokens[n - 2].type !== "@"
  ) {
    tokens.pop();
  }
  if (s.resolveNullDomain && tokens.length && tokens[tokens.length - 1].type === "@") {
    tokens.pop();
  }
}

/** Whether tokens hold a routing operator: @, ! (swap_bangpath), % (allow_percent_hack). */
function routes(s: Settings, tokens: AddrToken[]): boolean {
  return tokens.some((t) =>
    t.type === "@" || (t.type === "!" && s.canonical.swapBangpath) ||
    (t.type === "%" && s.canonical.allowPercentHack)
  );
}

/**
 * A lone quoted local part with routing inside is opened up, as Sendmail
 * does. With a bang path inside ("site!user") the inner address is
 * resolved. With @ or % inside, Postfix 3.7 answers with the local part
 * opened but never closed again (`"user@site ` and bad-syntax flags); the
 * same answer is given here, so that clients reject such an address alike.
 */
function crackQuoted(s: Settings, tokens: AddrToken[]): AddrToken[] | string | undefined {
  if (!s.resolveDequoted || tokens.length !== 1 || tokens[0].type !== "qstring") return undefined;
  const text = tokens[0].raw ?? tokens[0].text;
  const at = text.lastIndexOf("@");
  const pct = s.canonical.allowPercentHack ? text.lastIndexOf("%") : -1;
  if (at >= 0) return `"${text} `;
  if (pct >= 0) return `"${text.slice(0, pct)}@${text.slice(pct + 1)} `;
  if (!s.canonical.swapBangpath || !text.includes("!")) return undefined;
  const cracked = scanAddress(tokens[0].text);
  return routes(s, cracked) ? cracked : undefined;
}

/** No domain was left: the address is local to this machine, user@$myhostname. */
function appendLocalDomain(s: Settings, stripped: Stripped): void {
  if (lastOf(stripped.tokens, "@") < 0) {
    stripped.tokens.push(...scanAddress(`@${s.myhostname}`));
  }
}

/** Classifies a remote domain and picks its transport and next hop; returns the parameter to blame. */
async function routeRemote(
  s: Settings,
  p: Settings["regular"],
  sender: string,
  rcptDomain: string,
  result: ResolveResult,
): Promise<string> {
  const alias = await s.virtualAliasDomains.match(rcptDomain);
  if (alias === "match") {
    await nagBoth(s, rcptDomain, "virtual_alias_domains", [
      ["virtual_mailbox_domains", s.virtualMailboxDomains],
      ["relay_domains", s.relayDomains],
    ]);
    result.transport = "error";
    result.nexthop = `5.1.1 User unknown${s.showUnknownTable ? " in virtual alias table" : ""}`;
    result.flags |= ResolveFlag.CLASS_ALIAS;
    return "";
  }
  if (alias === "error") lookupFailure("virtual_alias_domains");
  const mailbox = await s.virtualMailboxDomains.match(rcptDomain);
  if (mailbox === "match") {
    await nagBoth(s, rcptDomain, "virtual_mailbox_domains", [["relay_domains", s.relayDomains]]);
    result.transport = p.virtualTransport;
    result.nexthop = rcptDomain;
    result.flags |= ResolveFlag.CLASS_VIRTUAL;
    return p.names.virtualTransport;
  }
  if (mailbox === "error") lookupFailure("virtual_mailbox_domains");
  let blame: string;
  const relay = await s.relayDomains.match(rcptDomain);
  if (relay === "match") {
    result.transport = p.relayTransport;
    blame = p.names.relayTransport;
    result.flags |= ResolveFlag.CLASS_RELAY;
  } else if (relay === "error") {
    lookupFailure("relay_domains");
  } else {
    blame = await defaultTransport(s, p, sender, result);
    result.flags |= ResolveFlag.CLASS_DEFAULT;
  }
  await nextHop(s, p, sender, rcptDomain, result);
  return blame;
}

/** default_transport, or sender_dependent_default_transport_maps' answer for the sender. */
async function defaultTransport(
  s: Settings,
  p: Settings["regular"],
  sender: string,
  result: ResolveResult,
): Promise<string> {
  const name = p.names.senderDefaultTransportMaps;
  const key = sender || s.nullDefaultTransportKey;
  const found = await senderLookup(s, p.senderDefaultTransportMaps, key, name);
  if (found === undefined) {
    result.transport = p.defaultTransport;
    return p.names.defaultTransport;
  }
  result.transport = found.toLowerCase() === "dunno" ? p.defaultTransport : found;
  return name;
}

/** The next hop of off-host mail: sender-dependent relayhost, relayhost, or the domain. */
async function nextHop(
  s: Settings,
  p: Settings["regular"],
  sender: string,
  rcptDomain: string,
  result: ResolveResult,
): Promise<void> {
  const name = p.names.senderRelayhostMaps;
  const key = sender || s.nullRelayhostKey;
  const found = await senderLookup(s, p.senderRelayhostMaps, key, name);
  if (found !== undefined && found.toLowerCase() !== "dunno") {
    result.nexthop = found;
  } else {
    result.nexthop = p.relayhost || rcptDomain;
  }
}

/**
 * A sender-dependent lookup in the address order of canonical(5), or
 * undefined when nothing (or no table) matches.
 */
function senderLookup(
  s: Settings,
  tables: Dict[],
  key: string,
  name: string,
): Promise<string | undefined> {
  if (tables.length === 0) return Promise.resolve(undefined);
  return checked(name, () => searchAddress(s, tables, key));
}

/**
 * The address order of canonical(5) for an internal-form address: the
 * external (quoted) form first, then the internal one, as Postfix's
 * mail_addr_find tries them (the null sender's stand-in "<>" is found as
 * "<>" after "\"<>\"").
 */
async function searchAddress(
  s: Settings,
  tables: Dict[],
  address: string,
): Promise<SearchResult | undefined> {
  const external = quoteAddress(address);
  const hit = await searchRelocated(tables, external, s.addressMapSettings);
  if (hit || external === address) return hit;
  return searchRelocated(tables, address, s.addressMapSettings);
}

/**
 * Runs a table search as Postfix's maps_find does: a table error or an
 * empty result (a table must answer "not found" instead) is a lookup failure.
 */
async function checked(
  name: string,
  search: () => Promise<SearchResult | undefined>,
): Promise<string | undefined> {
  let hit: SearchResult | undefined;
  try {
    hit = await search();
  } catch (err) {
    if (!(err instanceof DictError)) throw err;
    lookupFailure(name);
  }
  if (hit === undefined) return undefined;
  if (hit.value === "") {
    warn(`${name} lookup of ${hit.key} returns an empty string result`);
    warn(`${name} should return NO RESULT in case of NOT FOUND`);
    lookupFailure(name);
  }
  return hit.value;
}

/** transport_maps (not for virtual alias domains), then relocated_maps. */
async function overrides(
  s: Settings,
  p: Settings["regular"],
  rcptDomain: string,
  result: ResolveResult,
): Promise<void> {
  if (p.transportMaps.length && !(result.flags & ResolveFlag.CLASS_ALIAS)) {
    const value = await checked(
      p.names.transportMaps,
      () => searchTransportFor(p.transportMaps, s.transportSettings, result.recipient),
    );
    if (value !== undefined) applyTransportEntry(value, rcptDomain, result);
  }
  if (s.relocatedMaps.length) {
    const moved = await checked(
      "relocated_maps",
      () => searchAddress(s, s.relocatedMaps, result.recipient),
    );
    if (moved !== undefined) {
      result.transport = "error";
      // 5.1.6 is the closest match, but not perfect.
      result.nexthop = `5.1.6 User has moved to ${moved}`;
    }
  }
}

/** helpful_warnings: a domain in two address classes behaves as the first one found. */
async function nagBoth(
  s: Settings,
  domain: string,
  first: string,
  others: [string, { empty: boolean; match(d: string): Promise<string> }][],
): Promise<void> {
  if (!s.helpfulWarnings) return;
  for (const [name, list] of others) {
    if (!list.empty && await list.match(domain) === "match") {
      warn(`do not list domain ${domain} in BOTH ${first} and ${name}`);
    }
  }
}
