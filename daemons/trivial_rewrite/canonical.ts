// Rewriting to canonical form, trivial-rewrite(8)'s "rewrite" request and
// the step its resolver repeats: strip an obsolete source route, swap a UUCP
// bang path (swap_bangpath), turn user%domain into user@domain
// (allow_percent_hack), append @origin (append_at_myorigin) and .domain
// (append_dot_mydomain), drop one trailing dot. Two contexts: "local" uses
// $myorigin and $mydomain, "remote" $remote_header_rewrite_domain for both.
//
// This works on token lists (tokens.ts), where lib/address/rewrite.ts works
// on strings for cleanup's in-process use: the resolver needs the tokens, and
// the service must answer exactly as Postfix's does for quoted local parts.

import type { Config } from "../../lib/config/mod.ts";
import { info, warn } from "../../lib/log.ts";
import { type AddrToken, externalize, firstOf, lastOf, op, scanAddress } from "./tokens.ts";

/** One rule set: what to append (empty: nothing). */
export interface RewriteContext {
  name: "local" | "remote";
  origin: string;
  domain: string;
}

/** The switches every context shares. */
export interface CanonicalSettings {
  swapBangpath: boolean;
  allowPercentHack: boolean;
  appendAtMyorigin: boolean;
  appendDotMydomain: boolean;
  /** Log the compatibility note when .$mydomain is appended by default (compatibility_level < 1). */
  warnAppendDotMydomain: boolean;
  /** Whether mydestination names localhost (for that note). */
  localhostListed: boolean;
  mydomain: string;
}

/** Reads the canonical-form settings and both contexts from main.cf. */
export function canonicalFrom(
  config: Config,
): { settings: CanonicalSettings; local: RewriteContext; remote: RewriteContext } {
  const remoteDomain = config.get("remote_header_rewrite_domain");
  return {
    settings: {
      swapBangpath: config.bool("swap_bangpath"),
      allowPercentHack: config.bool("allow_percent_hack"),
      appendAtMyorigin: config.bool("append_at_myorigin"),
      appendDotMydomain: config.bool("append_dot_mydomain"),
      warnAppendDotMydomain: !config.isSet("append_dot_mydomain") &&
        (parseInt(config.get("compatibility_level"), 10) || 0) < 1,
      mydomain: config.get("mydomain"),
      localhostListed: config.list("mydestination").some((d) => d.toLowerCase() === "localhost"),
    },
    local: { name: "local", origin: config.get("myorigin"), domain: config.get("mydomain") },
    remote: { name: "remote", origin: remoteDomain, domain: remoteDomain },
  };
}

/** Rewrites a token list in place to canonical form in `ctx` (Postfix's rewrite_tree). */
export function rewriteTokens(
  tokens: AddrToken[],
  ctx: RewriteContext,
  s: CanonicalSettings,
): void {
  if (tokens.length === 0) return;
  // The empty quoted string is the null address in disguise: left alone.
  if (tokens.length === 1 && tokens[0].type === "qstring" && tokens[0].text === "") return;
  // An obsolete source route, @a,@b:user@c, loses everything up to the colon.
  if (tokens[0].type === "@") {
    const colon = firstOf(tokens, ":");
    if (colon >= 0 && colon !== tokens.length - 1) tokens.splice(0, colon + 1);
  }
  if (lastOf(tokens, "@") < 0) appendDomain(tokens, ctx, s);
  appendDotDomain(tokens, ctx, s);
  // One trailing dot goes; "..", "@." stay so diagnostics show the bogus form.
  const n = tokens.length;
  if (
    n > 1 && tokens[n - 1].type === "." && tokens[n - 2].type !== "." &&
    tokens[n - 2].type !== "@"
  ) {
    tokens.pop();
  }
}

/** The forms without @: site!user, user%site, and bare user (append_at_myorigin). */
function appendDomain(tokens: AddrToken[], ctx: RewriteContext, s: CanonicalSettings): void {
  const bang = s.swapBangpath ? firstOf(tokens, "!") : -1;
  if (bang >= 0) {
    const site = tokens.slice(0, bang);
    const user = tokens.slice(bang + 1);
    tokens.splice(0, tokens.length, ...user, op("@"), ...site);
    return;
  }
  const pct = s.allowPercentHack ? lastOf(tokens, "%") : -1;
  if (pct >= 0) {
    tokens[pct] = op("@");
    return;
  }
  if (s.appendAtMyorigin && ctx.origin) tokens.push(op("@"), ...scanAddress(ctx.origin));
}

/** Appends .domain to a domain without dots (append_dot_mydomain). */
function appendDotDomain(tokens: AddrToken[], ctx: RewriteContext, s: CanonicalSettings): void {
  if (!s.appendDotMydomain || !ctx.domain) return;
  const at = lastOf(tokens, "@");
  if (at < 0 || at === tokens.length - 1) return;
  const domain = tokens.slice(at + 1);
  if (domain.some((t) => t.type === "domlit" || t.type === ".")) return;
  if (s.warnAppendDotMydomain && ctx.name === "local") {
    const name = domain.map((t) => t.text).join("");
    const note = `using backwards-compatible default setting append_dot_mydomain=yes to rewrite ` +
      `"${name}" to "${name}.${s.mydomain}"`;
    // "localhost" is noted only when no address class lists it.
    if (name.toLowerCase() !== "localhost") info(note);
    else if (!s.localhostListed) {
      info(`${note}; please add "localhost" to mydestination or other address class`);
    }
  }
  tokens.push(op("."), ...scanAddress(ctx.domain));
}

/**
 * The "rewrite" request: an external-form address rewritten in `ctx` and
 * returned in external form. The empty address is returned as is, with
 * Postfix's warning.
 */
export function rewriteExternal(
  address: string,
  ctx: RewriteContext,
  s: CanonicalSettings,
): string {
  if (address === "") {
    warn("rewrite_addr: null address");
    return address;
  }
  const tokens = scanAddress(address, true);
  rewriteTokens(tokens, ctx, s);
  return externalize(tokens);
}
