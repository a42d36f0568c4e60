// The configuration every program reads: main.cf over the parameter defaults,
// with -o overrides on top, expanded lazily as postconf(5) describes.

import { configureLog, fatal, warn } from "../log.ts";
import { defaults } from "./defaults.ts";
import { expand, MacroError } from "./expand.ts";
import { MainCfError, parseMainCf, type Setting } from "./main_cf.ts";
import { computedDefaults, localNetworks } from "./computed.ts";
import { parameters } from "./parameters.ts";
import { transportDefault } from "./usage.ts";

export { MacroError } from "./expand.ts";
export { MainCfError, type Setting } from "./main_cf.ts";
export { type ParameterInfo, parameters, type ParameterType } from "./parameters.ts";

/** The configuration directory: `-c DIR`, else $MAIL_CONFIG, else /etc/postfix. */
export function configDirectory(flag?: string): string {
  return flag || Deno.env.get("MAIL_CONFIG") || "/etc/postfix";
}

/** Where a parameter's value came from. */
export type Origin = "override" | "main.cf" | "default" | "computed";

/** Options for loadConfig(). */
export interface LoadOptions {
  configDir?: string;
  overrides?: Record<string, string>;
  /** Program name for process_name (defaults to the log's program). */
  program?: string;
}

/** Multipliers for time units (postconf(5) "time units"). */
const timeUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Reads main.cf; fatal when it is missing or malformed, as Postfix is. */
export function loadConfig(options: LoadOptions = {}): Config {
  const dir = configDirectory(options.configDir);
  const file = `${dir}/main.cf`;
  let source: string;
  try {
    source = Deno.readTextFileSync(file);
  } catch (err) {
    fatal(`open ${file}: ${describeError(err)}`);
  }
  let settings: Setting[];
  try {
    settings = parseMainCf(source, file, warn);
  } catch (err) {
    if (err instanceof MainCfError) fatal(err.message);
    throw err;
  }
  return new Config(dir, settings, options.overrides ?? {}, options.program);
}

/** Builds a configuration from main.cf text without reading a file (tests, postconf -e). */
export function configFromText(
  dir: string,
  source: string,
  overrides: Record<string, string> = {},
): Config {
  return new Config(dir, parseMainCf(source, `${dir}/main.cf`), overrides);
}

/** Postfix's wording for the common system errors ("No such file or directory"). */
export function describeError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.AlreadyExists) return "File exists";
  if (err instanceof Deno.errors.IsADirectory) return "Is a directory";
  if (err instanceof Deno.errors.NotADirectory) return "Not a directory";
  return err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : String(err);
}

/** A loaded configuration: main.cf values over defaults, overrides over both. */
export class Config {
  readonly configDir: string;
  readonly mainCf: Map<string, Setting>;
  private overrides: Map<string, string>;
  private cache = new Map<string, string>();
  private computed: Record<string, string>;

  constructor(
    configDir: string,
    settings: Setting[],
    overrides: Record<string, string>,
    program?: string,
  ) {
    this.configDir = configDir;
    this.mainCf = new Map(settings.map((s) => [s.name, s]));
    this.overrides = new Map(Object.entries(overrides));
    this.computed = computedDefaults(configDir, program);
  }

  /** The unexpanded value: override, main.cf, then default; undefined if none. */
  raw(name: string): string | undefined {
    return this.overrides.get(name) ?? this.mainCf.get(name)?.value ?? this.defaultValue(name);
  }

  /** The default value (Postfix 3.7's, or computed for this host). */
  defaultValue(name: string): string | undefined {
    if (name === "mydomain") {
      // Postfix derives mydomain from myhostname as configured, not the host's name.
      const host = this.get("myhostname");
      const dot = host.indexOf(".");
      return dot > 0 && dot < host.length - 1 ? host.slice(dot + 1) : "localdomain";
    }
    if (name in this.computed) return this.computed[name];
    if (name === "mynetworks") return localNetworks(this.get("mynetworks_style"));
    // Per-transport parameters (SERVICE_destination_concurrency_limit, ...)
    // fall back to their default_ counterparts for any transport name.
    return Object.hasOwn(defaults, name) ? defaults[name] : transportDefault(name);
  }

  /** Where the value in force comes from, or undefined for an unknown parameter. */
  origin(name: string): Origin | undefined {
    if (this.overrides.has(name)) return "override";
    if (this.mainCf.has(name)) return "main.cf";
    if (name in this.computed || name === "mynetworks") return "computed";
    return Object.hasOwn(defaults, name) || transportDefault(name) !== undefined
      ? "default"
      : undefined;
  }

  /** Whether main.cf or an override sets the parameter. */
  isSet(name: string): boolean {
    return this.overrides.has(name) || this.mainCf.has(name);
  }

  /** Whether the parameter is one Postfix knows (it has a default). */
  isKnown(name: string): boolean {
    return Object.hasOwn(defaults, name) || name in this.computed || name === "mynetworks" ||
      transportDefault(name) !== undefined;
  }

  /** The expanded value; "" for an unknown parameter. Fatal on a macro error. */
  get(name: string): string {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const raw = this.raw(name);
    if (raw === undefined) return "";
    const value = this.expand(raw);
    this.cache.set(name, value);
    return value;
  }

  /** Expands `text` against this configuration. Fatal on a macro error. */
  expand(text: string, onUndefined?: (name: string) => void): string {
    try {
      return expand(text, (n) => this.raw(n), { onUndefined });
    } catch (err) {
      if (err instanceof MacroError) {
        err.messages.forEach((m) => warn(m));
        fatal("macro processing error");
      }
      throw err;
    }
  }

  /** A boolean parameter: yes/true or no/false, any case. */
  bool(name: string): boolean {
    const value = this.get(name).toLowerCase();
    if (value === "yes" || value === "true") return true;
    if (value === "no" || value === "false") return false;
    fatal(`bad boolean configuration: ${name} = ${this.get(name)}`);
  }

  /** An integer parameter. */
  int(name: string): number {
    const value = this.get(name);
    if (!/^-?\d+$/.test(value)) fatal(`bad numerical configuration: ${name} = ${value}`);
    return parseInt(value, 10);
  }

  /** A size parameter in bytes. */
  size(name: string): number {
    return this.int(name);
  }

  /**
   * A time parameter in seconds. A bare number is in `defaultUnit`, else in
   * the parameter's own default unit from the table (maximal_queue_lifetime's
   * `5` means five days), else in seconds.
   */
  time(name: string, defaultUnit?: string): number {
    const value = this.get(name);
    const m = /^(\d+)([smhdw]?)$/.exec(value);
    if (!m) fatal(`invalid time value "${value}" for parameter ${name}`);
    const unit = m[2] || defaultUnit || timeUnit(name);
    return parseInt(m[1], 10) * timeUnits[unit];
  }

  /** A list parameter: split on commas and whitespace, keeping { ... } groups whole. */
  list(name: string): string[] {
    return splitList(this.get(name));
  }

  /** Every parameter name with a value: defaults, computed, main.cf, overrides. */
  names(): string[] {
    const all = new Set([
      ...Object.keys(defaults),
      ...Object.keys(this.computed),
      "mynetworks",
      ...this.mainCf.keys(),
      ...this.overrides.keys(),
    ]);
    return [...all].sort();
  }

  /** A configuration with `overrides` (master.cf -o name=value) on top of this one. */
  withOverrides(overrides: Record<string, string>): Config {
    const merged = { ...Object.fromEntries(this.overrides), ...overrides };
    const copy = new Config(this.configDir, [...this.mainCf.values()], merged);
    copy.computed = this.computed;
    return copy;
  }
}

/** The unit of a bare number for a time parameter: the table's, else seconds. */
export function timeUnit(name: string): string {
  return (Object.hasOwn(parameters, name) && parameters[name].unit) || "s";
}

/**
 * Splits a list value on commas and whitespace as Postfix does, keeping a
 * `{ ... }` group (with its braces) as one element.
 */
export function splitList(value: string, separators = ", \t\r\n"): string[] {
  const items: string[] = [];
  let current = "";
  let level = 0;
  for (const ch of value) {
    if (ch === "{") level++;
    if (ch === "}" && level > 0) level--;
    if (level === 0 && separators.includes(ch)) {
      if (current) items.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current) items.push(current);
  return items;
}

/** Points lib/log at this configuration: syslog_name, maillog_file, myhostname. */
export function setupLogging(
  config: Config,
  program: string,
  options: { stderr?: boolean; verbose?: number } = {},
): void {
  configureLog({
    program,
    syslogName: config.get("syslog_name") || "postfix",
    maillogFile: config.get("maillog_file"),
    hostname: config.get("myhostname"),
    stderr: options.stderr ?? true,
    verbose: options.verbose ?? 0,
    facility: config.get("syslog_facility") || "mail",
    // POSTHORN_SYSLOG_SOCKET names another syslog socket (tests, containers).
    syslogPath: Deno.env.get(SYSLOG_SOCKET_ENV) ?? "/dev/log",
  });
}

/** The environment variable naming the syslog socket instead of /dev/log. */
export const SYSLOG_SOCKET_ENV = "POSTHORN_SYSLOG_SOCKET";
