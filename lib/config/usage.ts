// Which main.cf and master.cf parameters mean something, as postconf(1)
// decides before it warns "unused parameter" or "undefined parameter":
// built-in names (the parameter table), service-defined names (a delivery
// agent's master.cf service name plus a per-transport suffix), and
// user-defined names that something uses ($name references anywhere in
// main.cf or in master.cf -o values, smtpd_restriction_classes members,
// master.cf -o names).

import { defaults } from "./defaults.ts";
import { parameters } from "./parameters.ts";

/** Suffixes the queue manager reads per transport (postconf(5) "transport_..."). */
export const transportSuffixes = [
  "delivery_slot_cost",
  "delivery_slot_discount",
  "delivery_slot_loan",
  "destination_concurrency_failed_cohort_limit",
  "destination_concurrency_limit",
  "destination_concurrency_negative_feedback",
  "destination_concurrency_positive_feedback",
  "destination_rate_delay",
  "destination_recipient_limit",
  "extra_recipient_limit",
  "initial_destination_concurrency",
  "minimum_delivery_slots",
  "recipient_limit",
  "recipient_refill_delay",
  "recipient_refill_limit",
  "transport_rate_delay",
] as const;

/** Delivery agents whose services take the transport suffixes. */
const deliveryAgents = new Set(["smtp", "lmtp", "local", "virtual", "pipe", "error"]);
/** Commands whose services take SERVICE_time_limit. */
const timeLimited = new Set(["pipe", "spawn"]);

/**
 * Posthorn's own main.cf parameters (not in Postfix, so not in `postconf -d`):
 * set in main.cf they are used, never "unused parameter".
 *   posthorn_launcher     how the master starts a daemon when running from
 *                         source (lib/daemon/launcher.ts)
 *   posthorn_dns_servers  DNS servers to ask instead of resolv.conf's
 *                         (lib/dns): `ip`, `[ip]:port` or `ipv4:port`
 */
export const posthornParameters: readonly string[] = ["posthorn_dns_servers", "posthorn_launcher"];

/** Whether `name` is a built-in parameter. */
export function isBuiltin(name: string): boolean {
  return Object.hasOwn(parameters, name);
}

/** A built-in name keeps its own default (local_destination_recipient_limit is 1). */
function builtinOr(name: string, fallback: string): string {
  return Object.hasOwn(defaults, name) ? defaults[name] : fallback;
}

/** The built-in default of a per-transport suffix. */
function suffixDefault(suffix: string): string {
  return Object.hasOwn(defaults, `default_${suffix}`) ? `$default_${suffix}` : `$${suffix}`;
}

/**
 * The default of a per-transport parameter named for any transport
 * (`relay_destination_concurrency_limit` → `$default_destination_concurrency_limit`,
 * `uucp_time_limit` → `$command_time_limit`), or undefined for other names.
 */
export function transportDefault(name: string): string | undefined {
  for (const suffix of transportSuffixes) {
    if (name.endsWith(`_${suffix}`) && name.length > suffix.length + 1) {
      return suffixDefault(suffix);
    }
  }
  if (name.endsWith("_time_limit") && name.length > 11) return "$command_time_limit";
  return undefined;
}

/**
 * The service-defined parameters for master.cf services: name → default.
 * `services` are [service name, command] pairs. A name that is also built in
 * (local_destination_concurrency_limit) counts as service-defined, as postconf
 * -C shows, with its built-in default.
 */
export function serviceParameters(services: [string, string][]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [service, command] of services) {
    const program = command.slice(command.lastIndexOf("/") + 1);
    if (deliveryAgents.has(program)) {
      for (const suffix of transportSuffixes) {
        const name = `${service}_${suffix}`;
        out.set(name, builtinOr(name, suffixDefault(suffix)));
      }
    }
    if (timeLimited.has(program)) {
      const name = `${service}_time_limit`;
      out.set(name, builtinOr(name, "$command_time_limit"));
    }
  }
  return out;
}

/**
 * The parameter names a value refers to ($name, ${name}, $(name), and names
 * inside ${name?...}, ${name:...} and ${{...} == {...} ? ...}), in order.
 * Throws the reference's "truncated macro reference" text for an unclosed ${.
 */
export function referencedNames(value: string): string[] {
  const names: string[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== "$") continue;
    const next = value[i + 1];
    if (next === "$") {
      i++;
      continue;
    }
    let start = i + 1;
    if (next === "{" || next === "(") {
      if (!hasClose(value, i + 1)) {
        throw new Error(`truncated macro reference: "${value.slice(i)}"`);
      }
      start++;
    }
    const m = /^[A-Za-z0-9_]+/.exec(value.slice(start));
    if (m) names.push(m[0]);
  }
  return names;
}

function hasClose(text: string, open: number): boolean {
  const opener = text[open];
  const closer = opener === "{" ? "}" : ")";
  let level = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === opener) level++;
    else if (text[i] === closer && --level === 0) return true;
  }
  return false;
}
