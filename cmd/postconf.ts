// postconf: shows and edits the Posthorn (Postfix) configuration, as
// postconf(1) describes: main.cf parameters (-d defaults, -n explicit settings,
// -h/-H values or names only, -x expanded, -f folded, -o overrides), main.cf
// edits (-e name=value, -# comment out, -X remove), master.cf entries (-M),
// their fields (-F) and per-service parameters (-P) with their edits (-Me,
// -M#, -MX, -Fe, -Pe, -PX), bounce(5) templates (-t as written, -b expanded),
// and the supported lock methods (-l), lookup table types (-m) and SASL
// plug-in types (-a server, -A client).
//
// SASL: Posthorn's SMTP server speaks the Dovecot auth protocol only, so -a
// lists "dovecot"; its SMTP client has no SASL plug-in (Postfix's client side
// is Cyrus only), so -A lists nothing.

import process from "node:process";
import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, warn } from "../lib/log.ts";
import type { ProgramContext } from "../lib/program.ts";
import {
  configDirectory,
  describeError,
  MainCfError,
  parameters,
  timeUnit,
} from "../lib/config/mod.ts";
import { parseMainCf, type Setting } from "../lib/config/main_cf.ts";
import { MasterCfError, parseMasterCf } from "../lib/config/master_cf.ts";
import { computedDefaults, localNetworks } from "../lib/config/computed.ts";
import { defaults } from "../lib/config/defaults.ts";
import { expand, MacroError } from "../lib/config/expand.ts";
import {
  formatCommand,
  formatMasterEntry,
  formatParameter,
  masterFieldNames,
  type MasterFields,
  masterFields,
} from "../lib/config/format.ts";
import {
  editMainCf,
  editMasterCf,
  type MasterChange,
  writeAtomically,
} from "../lib/config/edit.ts";
import {
  isBuiltin,
  posthornParameters,
  referencedNames,
  serviceParameters,
} from "../lib/config/usage.ts";
import {
  type BounceTemplate,
  effectiveTemplates,
  formatTemplate,
  parseTemplates,
  templateKind,
  type TemplateName,
  type TemplateProblem,
  timeTemplateValue,
} from "../lib/config/bounce_templates.ts";

const usageText = "usage: postconf [-a (server SASL types)] [-A (client SASL types)] " +
  "[-b (bounce templates)] [-c config_dir] [-c param_class] [-d (parameter defaults)] " +
  "[-e (edit configuration)] [-f (fold lines)] [-F (master.cf fields)] [-h (no names)] " +
  "[-H (no values)] [-l (lock types)] [-m (map types)] [-M (master.cf)] " +
  "[-n (non-default parameters)] [-o name=value (override parameter value)] " +
  "[-p (main.cf, default)] [-P (master.cf parameters)] [-t (bounce templates)] " +
  "[-T compile-version|run-version|public-key-algorithms] [-v (verbose)] " +
  "[-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]";

/** The command-line flags, as parsed. */
interface Flags {
  configDir?: string;
  classes?: Set<string>;
  defaults: boolean;
  edit: boolean;
  fold: boolean;
  hideName: boolean;
  hideValue: boolean;
  nonDefault: boolean;
  expand: boolean;
  exclude: boolean;
  comment: boolean;
  overrides: [string, string][];
  mode:
    | "main"
    | "master"
    | "fields"
    | "params"
    | "locks"
    | "maps"
    | "sasl-server"
    | "sasl-client"
    | "templates"
    | "expanded-templates"
    | "tls";
  /** -T mode. */
  tls?: string;
  verbose: number;
}

/** postconf(1). */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name });
  const flags = parseFlags(args);
  configureLog({ program: ctx.name, verbose: flags.verbose });
  const operands = flags.operands;
  switch (flags.mode) {
    case "locks":
      console.log(["flock", "fcntl", "dotlock"].join("\n"));
      return 0;
    case "sasl-server":
      console.log("dovecot");
      return 0;
    case "sasl-client":
      return 0;
    case "tls":
      return showTls(flags.tls!);
    case "maps": {
      readMainCf(configDirectory(flags.configDir));
      // Loaded only for -m: the table modules are not needed for anything else.
      const { mapTypeNames } = await import("../maps/registry.ts");
      write([...mapTypeNames()].sort(cmp));
      return 0;
    }
  }
  if (flags.mode === "templates" || flags.mode === "expanded-templates") {
    showTemplates(flags, operands);
    return 0;
  }
  const editing = flags.edit || flags.exclude || flags.comment ||
    operands.some((o) => o.includes("="));
  if (editing) return runEdit(flags, operands);
  return show(flags, operands);
}

/**
 * -T: facts about the TLS library. The runtime's node:tls reports an OpenSSL
 * API version (process.versions.openssl), printed as `openssl version` would;
 * its certificates may be RSA or ECDSA keys (no DSA).
 */
function showTls(mode: string): number {
  const version = `OpenSSL ${process.versions.openssl ?? "unknown"}`;
  if (mode === "compile-version" || mode === "run-version") {
    console.log(version);
    return 0;
  }
  if (mode === "public-key-algorithms") {
    console.log("ecdsa\nrsa");
    return 0;
  }
  warn(`unknown 'postconf -T' mode: ${mode}`);
  return 1;
}

function parseFlags(args: string[]): Flags & { operands: string[] } {
  let parsed;
  try {
    parsed = getopt(args, "aAbc:C:deEfFhHlmMno:pPtT:vxX#");
  } catch (err) {
    if (err instanceof GetoptError) {
      console.error(`postconf: ${err.message}`);
      fatal(usageText);
    }
    throw err;
  }
  const flags: Flags = {
    defaults: false,
    edit: false,
    fold: false,
    hideName: false,
    hideValue: false,
    nonDefault: false,
    expand: false,
    exclude: false,
    comment: false,
    overrides: [],
    mode: "main",
    verbose: 0,
  };
  const modes: Record<string, Flags["mode"]> = {
    a: "sasl-server",
    A: "sasl-client",
    l: "locks",
    m: "maps",
    M: "master",
    F: "fields",
    P: "params",
    p: "main",
    t: "templates",
    b: "expanded-templates",
  };
  for (const { flag, arg } of parsed.options) {
    if (flag in modes) flags.mode = modes[flag];
    else if (flag === "c") flags.configDir = arg;
    else if (flag === "C") flags.classes = parseClasses(arg!);
    else if (flag === "d") flags.defaults = true;
    else if (flag === "e") flags.edit = true;
    else if (flag === "f") flags.fold = true;
    else if (flag === "h") flags.hideName = true;
    else if (flag === "H") flags.hideValue = true;
    else if (flag === "n") flags.nonDefault = true;
    else if (flag === "x") flags.expand = true;
    else if (flag === "X") flags.exclude = true;
    else if (flag === "#") flags.comment = true;
    else if (flag === "v") flags.verbose++;
    else if (flag === "o") {
      const eq = arg!.indexOf("=");
      if (eq < 0) fatal(`missing '=' after attribute name: "${arg}"`);
      flags.overrides.push([arg!.slice(0, eq).trim(), arg!.slice(eq + 1).trim()]);
    } else if (flag === "T") {
      flags.mode = "tls";
      flags.tls = arg;
    } else if (flag === "E") {
      fatal(usageText); // accepted by the reference's getopt, then refused with its usage
    } else {
      fatal(`option -${flag} is not supported by this postconf`);
    }
  }
  if (flags.mode === "master" && flags.nonDefault) fatal("with option -M, do not specify -n");
  checkConflicts(flags, parsed.operands);
  return { ...flags, operands: parsed.operands };
}

/** -C class,...: builtin, service, user or all. */
function parseClasses(arg: string): Set<string> {
  const classes = new Set(arg.split(/[ ,\t\r\n]+/).filter(Boolean));
  for (const c of classes) {
    if (!["builtin", "service", "user", "all"].includes(c)) {
      fatal(`unknown -C option value "${c}" in "${arg}"`);
    }
  }
  return classes;
}

/**
 * Flags that cannot go together in main.cf mode, reported as the reference
 * does: "specify one of -A -B" in this order of letters.
 */
function checkConflicts(flags: Flags, operands: string[]): void {
  if (flags.mode !== "main") return;
  const implied = !flags.edit && operands.some((o) => o.includes("="));
  const set: Record<string, boolean> = {
    d: flags.defaults,
    e: flags.edit || implied,
    n: flags.nonDefault,
    X: flags.exclude,
    "#": flags.comment,
    h: flags.hideName,
    x: flags.expand,
    H: flags.hideValue,
  };
  const edits = ["e", "X", "#"];
  const order = Object.keys(set);
  for (let i = 0; i < order.length; i++) {
    for (let j = i + 1; j < order.length; j++) {
      const [a, b] = [order[i], order[j]];
      if (!set[a] || !set[b]) continue;
      if ((a === "d" && b === "n") || edits.includes(a) || edits.includes(b)) {
        fatal(`specify one of -${a} -${b}`);
      }
    }
  }
}

// --- reading the configuration ---------------------------------------------

/** main.cf as postconf reads it: the settings in file order (later duplicates win). */
function readMainCf(dir: string): Setting[] {
  const file = `${dir}/main.cf`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    fatal(`open ${file}: ${describeError(err)}`);
  }
  try {
    return parseMainCf(text, file, warn);
  } catch (err) {
    if (err instanceof MainCfError) fatal(err.message);
    throw err;
  }
}

/** One master.cf entry for display: its fields and its -o settings. */
interface Service {
  view: MasterFields;
  name: string;
  type: string;
  settings: [string, string][];
}

/** master.cf entries; a missing file is fatal in master.cf modes, a warning otherwise. */
function readMasterCf(dir: string, required: boolean): Service[] {
  const file = `${dir}/master.cf`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    const message = `open ${file}: ${describeError(err)}`;
    if (required) fatal(message);
    warn(message);
    return [];
  }
  try {
    parseMasterCf(text, file);
  } catch (err) {
    if (err instanceof MasterCfError) fatal(err.message);
    throw err;
  }
  return masterServices(text);
}

function masterServices(text: string): Service[] {
  const services: Service[] = [];
  let current: string[] | undefined;
  const done = () => {
    if (current) services.push(serviceOf(masterFields(current.join(" "))));
    current = undefined;
  };
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    if (/^[ \t]/.test(line) && current) current.push(trimmed);
    else {
      done();
      current = [trimmed];
    }
  }
  done();
  return services;
}

function serviceOf(view: MasterFields): Service {
  const settings: [string, string][] = [];
  const words = view.command;
  for (let i = 1; i < words.length; i++) {
    if (words[i] === "-o" && i + 1 < words.length) {
      settings.push(splitSetting(unbrace(words[++i])));
    }
  }
  return { view, name: view.fields[0], type: view.fields[1], settings };
}

function unbrace(word: string): string {
  return word.startsWith("{") && word.endsWith("}") ? word.slice(1, -1) : word;
}

function splitSetting(text: string): [string, string] {
  const eq = text.indexOf("=");
  return eq < 0 ? [text, ""] : [text.slice(0, eq), text.slice(eq + 1)];
}

/** Everything postconf knows after reading both files. */
class Model {
  readonly mainFile: string;
  readonly masterFile: string;
  /** main.cf settings, then -o overrides, by name (insertion order = file order). */
  readonly main = new Map<string, string>();
  readonly service: Map<string, string>;
  readonly used = new Set<string>();
  private computed: Record<string, string>;
  private undefinedSeen = new Set<string>();
  private showDefaults: boolean;

  constructor(
    readonly dir: string,
    settings: Setting[],
    readonly services: Service[],
    flags: Flags,
  ) {
    this.mainFile = `${dir}/main.cf`;
    this.masterFile = `${dir}/master.cf`;
    this.computed = computedDefaults(flags.defaults ? "/etc/postfix" : dir, "postconf");
    this.showDefaults = flags.defaults;
    for (const s of settings) this.main.set(s.name, s.value);
    for (const [name, value] of flags.overrides) this.main.set(name, value);
    if (!flags.defaults && (flags.configDir || Deno.env.get("MAIL_CONFIG"))) {
      if (!this.main.has("config_directory")) this.main.set("config_directory", dir);
    }
    this.service = serviceParameters(
      services.map((s) => [s.name, s.view.command[0] ?? ""] as [string, string]),
    );
  }

  isKnown(name: string): boolean {
    return isBuiltin(name) || this.service.has(name);
  }

  /** Marks user-defined names used and warns about undefined references. */
  scan(): void {
    for (const s of this.services) {
      for (const [name, value] of s.settings) {
        if (!this.isKnown(name) && this.main.has(name)) this.used.add(name);
        this.scanValue(value, this.masterFile);
      }
    }
    for (const value of this.main.values()) this.scanValue(value, this.mainFile);
    for (const name of this.classes()) if (this.main.has(name)) this.used.add(name);
    for (const name of posthornParameters) if (this.main.has(name)) this.used.add(name);
    // Then every setting that means something is expanded through all its
    // references: a loop or a malformed macro there is fatal.
    for (const [name, value] of this.main) {
      if (!this.isShown(name)) continue;
      try {
        expand(value, (n) => this.value(n));
      } catch (err) {
        if (!(err instanceof MacroError)) throw err;
        err.messages.forEach((m) => warn(m));
        fatal("macro processing error");
      }
    }
  }

  private classes(): string[] {
    const lists = [this.main.get("smtpd_restriction_classes") ?? ""];
    for (const s of this.services) {
      for (const [name, value] of s.settings) {
        if (name === "smtpd_restriction_classes") lists.push(value);
      }
    }
    return lists.flatMap((v) => v.split(/[\s,]+/).filter(Boolean));
  }

  private scanValue(value: string, file: string): void {
    // One level only: marks names used, warns about undefined ones; a
    // malformed macro here is a warning (scan() finds the fatal cases).
    let names: string[];
    try {
      names = referencedNames(value);
    } catch (err) {
      warn((err as Error).message);
      return;
    }
    for (const name of names) {
      if (this.isKnown(name)) continue;
      if (this.main.has(name)) {
        this.used.add(name);
      } else if (!this.undefinedSeen.has(name)) {
        this.undefinedSeen.add(name);
        warn(`${file}: undefined parameter: ${name}`);
      }
    }
  }

  /** Whether a main.cf name is shown (known or used). */
  isShown(name: string): boolean {
    return this.isKnown(name) || this.used.has(name);
  }

  /** The default value of a known parameter. */
  defaultValue(name: string): string | undefined {
    if (name === "mydomain") return domainOf(this.lookupDefault("myhostname"));
    if (name in this.computed) return this.computed[name];
    if (name === "mynetworks") {
      return localNetworks(this.lookupDefault("mynetworks_style") || "subnet");
    }
    if (Object.hasOwn(defaults, name)) return defaults[name];
    return this.service.get(name);
  }

  /** A parameter a computed default derives from, as this listing sees it (expanded). */
  private lookupDefault(name: string): string {
    const raw = this.showDefaults ? this.defaultValue(name) : this.value(name);
    return this.expand(raw ?? "", (n) => this.showDefaults ? this.defaultValue(n) : this.value(n));
  }

  /** The value in force: main.cf (or override), else the default. */
  value(name: string): string | undefined {
    return this.main.get(name) ?? this.defaultValue(name);
  }

  /** Expands `text` with `lookup`; fatal on a runaway or malformed macro. */
  expand(text: string, lookup: (name: string) => string | undefined): string {
    try {
      return expand(text, lookup);
    } catch (err) {
      if (err instanceof MacroError) {
        err.messages.forEach((m) => warn(m));
        fatal("macro processing error");
      }
      throw err;
    }
  }

  /** Unused-parameter warnings for main.cf settings and master.cf -o settings. */
  warnUnused(main: boolean, master: boolean): void {
    if (main) {
      for (const [name, value] of this.main) {
        if (!this.isShown(name)) {
          warn(`${this.mainFile}: unused parameter: ${name}=${printable(value)}`);
        }
      }
    }
    if (!master) return;
    for (const s of this.services) {
      const names = [...new Map(s.settings)].sort(([a], [b]) => cmp(a, b));
      for (const [name, value] of names) {
        if (!this.isKnown(name) && !this.main.has(name)) {
          warn(`${this.masterFile}: unused parameter: ${name}=${printable(value)}`);
        }
      }
    }
  }
}

/** mydomain's default: myhostname without its first label, else "localdomain". */
function domainOf(hostname: string): string {
  const dot = hostname.indexOf(".");
  return dot > 0 && dot < hostname.length - 1 ? hostname.slice(dot + 1) : "localdomain";
}

function printable(text: string): string {
  // Control characters print as "?", as the reference's warnings show them.
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, "?");
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function write(lines: string[]): void {
  if (lines.length === 0) return;
  const data = new TextEncoder().encode(lines.join("\n") + "\n");
  let off = 0;
  while (off < data.length) off += Deno.stdout.writeSync(data.subarray(off));
}

// --- showing -------------------------------------------------------------------

function loadModel(flags: Flags, masterRequired: boolean): Model {
  const dir = configDirectory(flags.configDir);
  const settings = readMainCf(dir);
  const services = readMasterCf(dir, masterRequired);
  const model = new Model(dir, settings, services, flags);
  // With -d postconf shows the built-in defaults only and looks no further into main.cf.
  if (!flags.defaults) model.scan();
  return model;
}

function show(flags: Flags, operands: string[]): number {
  const model = loadModel(flags, flags.mode !== "main");
  if (flags.mode === "main") {
    showMain(model, flags, operands);
    if (!flags.defaults) model.warnUnused(true, true);
  } else if (flags.mode === "master") {
    showMaster(model, flags, operands);
    model.warnUnused(false, true);
  } else {
    showServiceItems(model, flags, operands);
    model.warnUnused(false, true);
  }
  return 0;
}

/** Which class a name belongs to, for -C. */
function classOf(model: Model, name: string): string {
  return model.service.has(name) ? "service" : isBuiltin(name) ? "builtin" : "user";
}

function showMain(model: Model, flags: Flags, operands: string[]): void {
  const wanted = (name: string) =>
    !flags.classes || flags.classes.has("all") || flags.classes.has(classOf(model, name));
  const lookup = flags.defaults
    ? (n: string) => model.defaultValue(n)
    : (n: string) => model.value(n);
  const line = (name: string, value: string) => {
    if (flags.hideValue) return name;
    const raw = isBuiltin(name) && parameters[name].raw;
    const shown = flags.expand && !raw ? model.expand(value, lookup) : value;
    return formatParameter(name, shown, { fold: flags.fold, hideName: flags.hideName });
  };
  if (operands.length) {
    for (const name of operands) {
      const known = flags.defaults ? model.isKnown(name) : model.isShown(name);
      const value = known && !(flags.nonDefault && !model.main.has(name))
        ? lookup(name)
        : undefined;
      if (!known) warn(`${name}: unknown parameter`);
      else if (value !== undefined) write([line(name, value)]);
    }
    return;
  }
  let names: string[];
  if (flags.defaults) {
    names = [...new Set([...Object.keys(parameters), ...model.service.keys()])];
  } else if (flags.nonDefault) {
    names = [...model.main.keys()].filter((n) => model.isShown(n));
  } else {
    names = [
      ...new Set([
        ...Object.keys(parameters),
        ...model.service.keys(),
        ...[...model.main.keys()].filter((n) => model.isShown(n)),
      ]),
    ];
  }
  const out: string[] = [];
  for (const name of names.filter(wanted).sort(cmp)) {
    const value = lookup(name);
    if (value !== undefined) out.push(line(name, value));
  }
  write(out);
}

/** A selector `service[/type[/item]]`; omitted trailing parts match anything. */
interface Selector {
  text: string;
  parts: string[];
  matched: boolean;
}

const selectorSyntax: Record<string, string> = {
  master: "-M option requires service_name[/type]",
  fields: "-F option requires service_name[/type[/field]]",
  params: "-P option requires service_name[/type[/parameter]]",
};

function selectors(operands: string[], depth: number, mode: string): Selector[] {
  return operands.map((text) => {
    const parts = text.split("/");
    if (parts[0] === "" || parts.length > depth) fatal(selectorSyntax[mode]);
    // Empty trailing parts match anything, like omitted ones.
    for (let i = parts.length - 1; i > 0 && parts[i] === ""; i--) parts[i] = "*";
    while (parts.length < depth) parts.push("*");
    return { text, parts, matched: false };
  });
}

function partMatches(pattern: string | undefined, value: string): boolean {
  return pattern === undefined || pattern === "*" || pattern === value;
}

function reportUnmatched(sels: Selector[]): void {
  for (const sel of sels) if (!sel.matched) warn(`unmatched request: "${sel.text}"`);
}

/** A service's parameter lookup for -x: its -o settings, service_name, then main.cf. */
function serviceLookup(model: Model, s: Service): (name: string) => string | undefined {
  const own = new Map(s.settings);
  return (name) => {
    if (own.has(name)) return own.get(name);
    if (name === "service_name") return s.name;
    return model.value(name);
  };
}

function expandedView(model: Model, s: Service, flags: Flags): MasterFields {
  if (!flags.expand) return s.view;
  // Only -o values expand; the command's own arguments hold delivery-time macros.
  const lookup = serviceLookup(model, s);
  const command = [...s.view.command];
  for (let i = 1; i < command.length - 1; i++) {
    if (command[i] !== "-o") continue;
    const [name, value] = splitSetting(unbrace(command[++i]));
    const setting = `${name}=${model.expand(value, lookup)}`;
    command[i] = /[ \t]/.test(setting) ? `{${setting}}` : setting;
  }
  return { fields: s.view.fields, command };
}

function showMaster(model: Model, flags: Flags, operands: string[]): void {
  const sels = selectors(operands, 2, flags.mode);
  const out: string[] = [];
  for (const s of model.services) {
    const hits = sels.filter((sel) =>
      partMatches(sel.parts[0], s.name) && partMatches(sel.parts[1], s.type)
    );
    if (sels.length && hits.length === 0) continue;
    hits.forEach((h) => (h.matched = true));
    out.push(formatMasterEntry(expandedView(model, s, flags), flags.fold));
  }
  write(out);
  reportUnmatched(sels);
}

function showServiceItems(model: Model, flags: Flags, operands: string[]): void {
  const sels = selectors(operands, 3, flags.mode);
  const out: string[] = [];
  for (const s of model.services) {
    const view = expandedView(model, s, flags);
    const items: [string, string, boolean][] = flags.mode === "fields"
      ? masterFieldNames.map((
        field,
        i,
      ) => [field, i < 7 ? view.fields[i] : view.command.join(" "), i === 7])
      : [...new Map(s.settings)].sort(([a], [b]) => cmp(a, b)).map((
        [name, value],
      ) => [name, flags.expand ? model.expand(value, serviceLookup(model, s)) : value, false]);
    // Per service, each request in turn: a field two requests select prints twice.
    const requests = sels.length ? sels : [undefined];
    for (const sel of requests) {
      for (const [item, value, isCommand] of items) {
        if (sel) {
          if (
            !partMatches(sel.parts[0], s.name) || !partMatches(sel.parts[1], s.type) ||
            !partMatches(sel.parts[2], item)
          ) continue;
          sel.matched = true;
        }
        const label = `${s.name}/${s.type}/${item}`;
        if (flags.hideValue) out.push(label);
        else if (isCommand) {
          let [name, ...rest] = view.command;
          // As the reference prints it: with -h, a first argument that is not
          // -o follows the command name without a space.
          if (flags.hideName && rest.length && rest[0] !== "-o") {
            name += rest[0];
            rest = rest.slice(1);
          }
          const head = flags.hideName ? name : `${label} = ${name}`;
          out.push(formatCommand(head, rest, flags.fold));
        } else {
          out.push(formatParameter(label, value, { fold: flags.fold, hideName: flags.hideName }));
        }
      }
    }
  }
  write(out);
  reportUnmatched(sels);
}

// --- bounce templates (-t, -b) ------------------------------------------------

function showTemplates(flags: Flags, operands: string[]): void {
  const dir = configDirectory(flags.configDir);
  const model = new Model(dir, readMainCf(dir), [], flags);
  const file = operands.length
    ? operands[0]
    : model.expand(model.value("bounce_template_file") ?? "", (n) => model.value(n));
  // The reference reports template problems as its bounce daemon.
  configureLog({ program: "postfix/bounce" });
  let custom = new Map<TemplateName, BounceTemplate>();
  if (file !== "") {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      fatal(`open ${file}: ${describeError(err)}`);
    }
    const problems: TemplateProblem[] = [];
    custom = parseTemplates(text, file, problems);
    for (const p of problems) (p.fatal ? fatal : warn)(p.text);
  }
  const templates = effectiveTemplates(custom);
  if (flags.mode === "templates") {
    write([templates.map(formatTemplate).join("\n\n")]);
    return;
  }
  const out = templates.map((t) => {
    const body = t.body.map((line) => expandTemplateLine(model, t, line, file));
    return [`expanded_${templateKind(t.name)}_text = <<EOF`, ...body, "EOF"].join("\n");
  });
  write([out.join("\n\n")]);
}

/** One line of template text with main.cf $parameters and bounce(5)'s time parameters. */
function expandTemplateLine(model: Model, t: BounceTemplate, line: string, file: string): string {
  const kind = templateKind(t.name);
  const seconds = (name: string) => {
    const value = model.expand(model.value(name) ?? "0", (n) => model.value(n));
    const m = /^(\d+)([smhdw]?)$/.exec(value);
    const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m?.[2] || timeUnit(name)] ?? 1;
    return m ? parseInt(m[1], 10) * unit : 0;
  };
  let undefinedName = false;
  const lookup = (name: string) => {
    const special = timeTemplateValue(name, seconds);
    if (!special) return model.value(name);
    if (special.value === 0 && seconds(special.parameter) > 0) {
      warn(`${file}: zero result in ${kind} template conversion of parameter "${name}"`);
      warn(`please reduce time unit "${special.unit}" of "${name}" in ${kind} template`);
      warn("for instructions see the bounce(5) manual");
    }
    return String(special.value);
  };
  const text = expand(line, lookup, { onUndefined: () => (undefinedName = true) });
  if (undefinedName) fatal(`${file}: undefined $name in ${kind} template: ${line}`);
  return text;
}

// --- editing -------------------------------------------------------------------

function runEdit(flags: Flags, operands: string[]): number {
  const dir = configDirectory(flags.configDir);
  if (flags.mode === "main") {
    editMain(dir, flags, operands);
  } else if (flags.mode === "master") {
    editMaster(dir, flags, operands);
  } else if (flags.mode === "fields" || flags.mode === "params") {
    editServiceItems(dir, flags, operands);
  }
  return 0;
}

function readFile(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    fatal(`open ${path}: ${describeError(err)}`);
  }
}

function editMain(dir: string, flags: Flags, operands: string[]): void {
  const file = `${dir}/main.cf`;
  const text = readFile(file);
  warnMultiple(
    file,
    text,
    operands.map((o) => (o.includes("=") ? o.slice(0, o.indexOf("=")) : o).trim()),
  );
  if (flags.exclude || flags.comment) {
    for (const name of operands) {
      if (name.includes("=")) fatal(`-X or -# requires parameter names, not "name=value": ${name}`);
    }
    const names = new Set(operands);
    writeAtomically(
      file,
      editMainCf(text, flags.exclude ? { remove: names } : { comment: names }),
    );
    return;
  }
  const set = new Map<string, string>();
  for (const op of operands) {
    const eq = op.indexOf("=");
    if (eq < 0) fatal(`missing '=' after attribute name: "${op}"`);
    set.set(op.slice(0, eq).trim(), op.slice(eq + 1).trim());
  }
  writeAtomically(file, editMainCf(text, { set }));
}

/** Checks one new master.cf field value (-Fe), naming the value alone as the reference does. */
function checkField(field: string, value: string): void {
  const at = (masterFieldNames as readonly string[]).indexOf(field);
  if (at < 1 || at > 6) return;
  const words = ["x", "unix", "-", "-", "-", "-", "-", "command"];
  words[at] = value;
  try {
    parseMasterCf(words.join(" "), "");
  } catch (err) {
    if (err instanceof MasterCfError) fatal(`invalid ${field} field "${value}" in "${value}"`);
    throw err;
  }
}

/** "multiple entries" for each name to edit that main.cf sets more than once. */
function warnMultiple(file: string, text: string, names: string[]): void {
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (/^[ \t#]/.test(line) || line.trim() === "") continue;
    const name = line.split("=")[0].trim();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  for (const name of new Set(names)) {
    if ((counts.get(name) ?? 0) > 1) warn(`${file}: multiple entries for "${name}"`);
  }
}

/** Validates a master.cf entry the way master.cf itself is read; fatal when bad. */
function checkEntry(text: string, context: string): void {
  try {
    parseMasterCf(text, "");
  } catch (err) {
    if (err instanceof MasterCfError) {
      fatal(err.message.startsWith("file : line") ? `bad field count: "${context}"` : err.message);
    }
    throw err;
  }
}

function editMaster(dir: string, flags: Flags, operands: string[]): void {
  const file = `${dir}/master.cf`;
  const text = readFile(file);
  const changes = new Map<string, MasterChange>();
  const append: MasterFields[] = [];
  for (const op of operands) {
    const eq = op.indexOf("=");
    const key = eq < 0 ? op : op.slice(0, eq);
    const [service, type, ...extra] = key.split("/");
    if (!service || !type || extra.length) {
      fatal("-Me, -MX or -M# requires service_name/type");
    }
    if (flags.exclude || flags.comment) {
      if (eq >= 0) fatal("-MX or -M# requires service_name/type, not service_name/type=value");
      changes.set(`${service}/${type}`, { action: flags.exclude ? "remove" : "comment" });
    } else {
      if (eq < 0) fatal(`-Me requires service_name/type=value: "${op}"`);
      const value = op.slice(eq + 1);
      checkEntry(value, op);
      changes.set(`${service}/${type}`, {
        action: "replace",
        entry: masterFields(value),
        inPlace: true,
      });
    }
  }
  const found = new Set<string>();
  const updated = editMasterCf(text, (entry) => {
    const key = `${entry.fields[0]}/${entry.fields[1]}`;
    const change = changes.get(key);
    if (change) found.add(key);
    return change;
  });
  for (const [key, change] of changes) {
    if (found.has(key)) continue;
    if (change.action === "replace") append.push(change.entry);
    else warn(`unmatched service_name/type: "${key}"`);
  }
  writeAtomically(file, append.length ? editMasterCf(updated, () => undefined, append) : updated);
}

function editServiceItems(dir: string, flags: Flags, operands: string[]): void {
  const file = `${dir}/master.cf`;
  const text = readFile(file);
  const fields = flags.mode === "fields";
  interface Request {
    op: string;
    service: string;
    type: string;
    item: string;
    value?: string;
    matched: boolean;
  }
  const requests: Request[] = operands.map((op) => {
    const eq = op.indexOf("=");
    const key = eq < 0 ? op : op.slice(0, eq);
    const parts = key.split("/");
    if (parts.length !== 3 || parts.some((p) => p === "")) {
      fatal(
        `-${fields ? "F" : "P"}${flags.exclude ? "X" : "e"} requires service_name/type/${
          fields ? "field" : "parameter"
        }${flags.exclude ? "" : "=value"}`,
      );
    }
    const value = eq < 0 ? undefined : op.slice(eq + 1);
    if (flags.exclude) {
      if (fields) fatal("-X is not supported with -F");
      if (value !== undefined) fatal(`-PX requires service_name/type/parameter: "${op}"`);
    } else {
      if (value === undefined) fatal(`missing '=' after attribute name: "${op}"`);
      if (fields && !(masterFieldNames as readonly string[]).includes(parts[2])) {
        fatal(`invalid service attribute name: "${parts[2]}"`);
      }
      if (fields) checkField(parts[2], value.trim());
      if (!fields && /[ \t]/.test(value.trim())) {
        fatal("-Pe does not accept whitespace in parameter value");
      }
    }
    return { op, service: parts[0], type: parts[1], item: parts[2], value, matched: false };
  });
  const updated = editMasterCf(text, (entry) => {
    const mine = requests.filter((r) =>
      r.service === entry.fields[0] && r.type === entry.fields[1]
    );
    if (mine.length === 0) return undefined;
    let view: MasterFields = { fields: [...entry.fields], command: [...entry.command] };
    for (const r of mine) {
      r.matched = true;
      view = fields ? setField(view, r.item, r.value!) : setParam(view, r.item, r.value);
    }
    checkEntry([...view.fields, ...view.command].join(" "), mine[0].op);
    return { action: "replace", entry: view };
  });
  for (const r of requests) {
    if (!r.matched) warn(`unmatched service_name/type: "${r.op}"`);
  }
  writeAtomically(file, updated);
}

function setField(view: MasterFields, field: string, value: string): MasterFields {
  const at = (masterFieldNames as readonly string[]).indexOf(field);
  if (at < 7) {
    const fields = [...view.fields];
    fields[at] = value.trim();
    return { fields, command: view.command };
  }
  return { fields: view.fields, command: masterFields(`x x x x x x x ${value}`).command };
}

/** Sets (value given) or removes (undefined) `-o name=...` in the command's arguments. */
function setParam(view: MasterFields, name: string, value: string | undefined): MasterFields {
  const command: string[] = [view.command[0]];
  let done = false;
  for (let i = 1; i < view.command.length; i++) {
    const word = view.command[i];
    if (word === "-o" && i + 1 < view.command.length) {
      const setting = view.command[++i];
      if (splitSetting(unbrace(setting))[0] === name) {
        if (value !== undefined && !done) command.push("-o", `${name}=${value.trim()}`);
        done = true;
      } else {
        command.push("-o", setting);
      }
    } else {
      command.push(word);
    }
  }
  if (!done && value !== undefined) command.push("-o", `${name}=${value.trim()}`);
  return { fields: view.fields, command };
}
