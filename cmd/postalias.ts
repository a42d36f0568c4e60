// postalias: Postfix alias database maintenance, as postalias(1).
//
// Builds alias tables from aliases(5) source files (with the `@` sentinel
// entry Postfix writes), updates them from standard input (-i), and queries
// (-q), deletes (-d) and lists (-s) them. Rebuilds are atomic, as postmap's.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, warn } from "../lib/log.ts";
import { loadConfig, setupLogging } from "../lib/config/mod.ts";
import type { ProgramContext } from "../lib/program.ts";
import { type Dict, DictError, type OpenOptions, readTableFile } from "../maps/dict.ts";
import { openMap } from "../maps/registry.ts";
import { parseAliases, writeAliasSentinels } from "../maps/aliases.ts";
import {
  chownLike,
  creatableError,
  lookupFirst as lookupTables,
  lookupKeys,
  newTableMode,
  OutputBuffer,
  queryError,
  readStdin,
  tableFlags,
  tableSpec,
  textLines,
  type ToolFlags,
  utf8Entries,
} from "../maps/table_tool.ts";

const usage =
  "usage: postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";

interface Options {
  configDir?: string;
  query?: string;
  del?: string;
  list: boolean;
  incremental: boolean;
  keepRoot: boolean;
  defaultMode: boolean;
  verbose: number;
  tool: ToolFlags;
  maps: string[];
}

/** postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file... */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  const opts = parseArgs(args, ctx.name);
  const config = loadConfig({ configDir: opts.configDir, program: "postalias" });
  setupLogging(config, ctx.name, { stderr: true, verbose: opts.verbose });
  opts.tool.utf8 = opts.tool.utf8 && config.bool("smtputf8_enable");
  const defaultType = config.get("default_database_type") || "hash";
  const specs = opts.maps.map((m) => {
    const { type, name } = tableSpec(m, defaultType);
    return `${type}:${name}`;
  });
  const base: OpenOptions = { config };
  try {
    if (opts.query !== undefined) return await runQuery(opts, specs, base);
    if (opts.del !== undefined) return await runDelete(opts, specs, base);
    if (opts.list) return await runList(opts, specs, base);
    if (opts.incremental) return await runIncremental(opts, specs, base);
    for (const spec of specs) await build(opts, spec, base);
    return 0;
  } catch (err) {
    if (err instanceof DictError) fatal(err.message);
    throw err;
  }
}

function parseArgs(args: string[], name: string): Options {
  let parsed;
  try {
    parsed = getopt(args, "c:d:fiNnopq:rsuUvw");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${name}: ${err.message}`);
    fatal(usage);
  }
  const o: Options = {
    list: false,
    incremental: false,
    keepRoot: false,
    defaultMode: false,
    verbose: 0,
    tool: {
      noFold: false,
      withNull: false,
      withoutNull: false,
      replace: false,
      ignoreDups: false,
      utf8: true,
    },
    maps: parsed.operands,
  };
  let modes = 0;
  for (const { flag, arg } of parsed.options) {
    switch (flag) {
      case "c":
        o.configDir = arg;
        break;
      case "d":
        o.del = arg;
        modes++;
        break;
      case "f":
        o.tool.noFold = true;
        break;
      case "i":
        o.incremental = true;
        break;
      case "N":
        o.tool.withNull = true;
        o.tool.withoutNull = false;
        break;
      case "n":
        o.tool.withoutNull = true;
        o.tool.withNull = false;
        break;
      case "o":
        o.keepRoot = true;
        break;
      case "p":
        o.defaultMode = true;
        break;
      case "q":
        o.query = arg;
        modes++;
        break;
      case "r":
        o.tool.replace = true;
        o.tool.ignoreDups = false;
        break;
      case "s":
        o.list = true;
        modes++;
        break;
      case "u":
        o.tool.utf8 = false;
        break;
      case "U":
        o.tool.utf8 = true;
        break;
      case "v":
        o.verbose++;
        break;
      case "w":
        o.tool.ignoreDups = true;
        o.tool.replace = false;
        break;
    }
  }
  if (modes > 1) fatal("specify only one of -s or -q or -d");
  if (o.maps.length === 0) fatal(usage);
  return o;
}

function openRead(spec: string, opts: Options, base: OpenOptions): Dict {
  return openMap(spec, { ...base, flags: tableFlags(opts.tool, false) });
}

async function lookupFirst(dicts: Dict[], key: string, utf8: boolean): Promise<string | undefined> {
  const r = await lookupTables(dicts, key, warn, utf8);
  if (r.error) fatal(r.error);
  return r.value;
}

/** -q key, -q -: the first table that has the alias answers. */
async function runQuery(opts: Options, specs: string[], base: OpenOptions): Promise<number> {
  const dicts = specs.map((s) => openRead(s, opts, base));
  const out = new OutputBuffer();
  let found = false;
  if (opts.query !== "-") {
    const v = await lookupFirst(dicts, opts.query!, opts.tool.utf8);
    if (v !== undefined) {
      out.line(v);
      found = true;
    }
  } else {
    const keys = textLines(await readStdin());
    found = await queryMany(
      dicts,
      keys,
      (key, v) => out.line(`${key}:\t${v}`),
      out,
      opts.tool.utf8,
    );
  }
  out.flush();
  for (const d of dicts) await d.close();
  return found ? 0 : 1;
}

/** -d key, -d -: remove one entry per table. */
async function runDelete(opts: Options, specs: string[], base: OpenOptions): Promise<number> {
  const keys = opts.del === "-" ? textLines(await readStdin()) : [opts.del!];
  let found = false;
  for (const spec of specs) {
    const dict = openMap(spec, { ...base, write: true, flags: tableFlags(opts.tool, true) });
    try {
      for (const key of keys) if (await dict.delete(key)) found = true;
    } catch (err) {
      fatal(queryError(dict, err));
    }
    await dict.close();
  }
  return found ? 0 : 1;
}

/** -s: every alias of every table, as `name:<TAB>value`. */
async function runList(opts: Options, specs: string[], base: OpenOptions): Promise<number> {
  const out = new OutputBuffer();
  for (const spec of specs) {
    const dict = openRead(spec, opts, base);
    try {
      for await (const [k, v] of dict.sequence()) out.line(`${k}:\t${v}`);
    } catch (err) {
      out.flush();
      fatal(queryError(dict, err));
    }
    await dict.close();
  }
  out.flush();
  return 0;
}

/** -i: aliases from standard input into existing tables. */
async function runIncremental(opts: Options, specs: string[], base: OpenOptions): Promise<number> {
  const entries = [
    ...utf8Entries(
      parseAliases(await readStdin(), "stdin", warn),
      line,
      "stdin",
      opts.tool.utf8,
      warn,
    ),
  ];
  for (const spec of specs) {
    const type = spec.slice(0, spec.indexOf(":"));
    const notCreatable = creatableError(type);
    if (notCreatable) fatal(notCreatable);
    const dict = openMap(spec, { ...base, write: true, flags: tableFlags(opts.tool, true) });
    for (const e of entries) await dict.update(e.name, e.value);
    await dict.close();
  }
  return 0;
}

/** postalias [type:]file: a new alias table, swapped in whole. */
async function build(opts: Options, spec: string, base: OpenOptions): Promise<void> {
  const config = base.config!;
  const colon = spec.indexOf(":");
  const type = spec.slice(0, colon);
  const file = spec.slice(colon + 1);
  const notCreatable = creatableError(type);
  if (notCreatable) fatal(notCreatable);
  const text = readTableFile(file);
  const suffix = type === "cdb" ? ".cdb" : ".db";
  const dict = openMap(spec, {
    ...base,
    create: true,
    write: true,
    mode: newTableMode(file, file + suffix, opts.defaultMode),
    flags: tableFlags(opts.tool, true),
  });
  try {
    // Flushing first keeps duplicate warnings in line order with these.
    const report = (text: string) => (dict.flush?.(), warn(text));
    const entries = utf8Entries(
      parseAliases(text, file, report),
      line,
      file,
      opts.tool.utf8,
      report,
    );
    for (const e of entries) await dict.update(e.name, e.value);
    await writeAliasSentinels(dict, config.get("myhostname") || undefined);
  } catch (err) {
    dict.abort?.();
    throw err;
  }
  await dict.close();
  if (Deno.uid() === 0 && !opts.keepRoot) chownLike(file + suffix, file);
}

/** Looks keys up in batches and prints each one found; true when any was. */
async function queryMany(
  dicts: Dict[],
  keys: string[],
  print: (key: string, value: string) => void,
  out: OutputBuffer,
  utf8: boolean,
): Promise<boolean> {
  let found = false;
  for (let start = 0; start < keys.length; start += 4096) {
    const batch = keys.slice(start, start + 4096);
    const r = await lookupKeys(dicts, batch, warn, utf8);
    for (let i = 0; i < batch.length; i++) {
      const v = r.values[i];
      if (v === undefined) continue;
      print(batch[i], v);
      found = true;
    }
    if (r.error) {
      out.flush();
      fatal(r.error);
    }
  }
  return found;
}

/** A source entry as a line, for warnings. */
const line = (e: { name: string; value: string }) => `${e.name}: ${e.value}`;
