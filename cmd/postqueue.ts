// postqueue: the unprivileged queue command, as Postfix's postqueue(1).
//
// -p lists the queue in mailq's format and -j as JSON lines, both through
// the showq service (or, with the mail system down, showq run stand-alone
// for a user who may read the queue); -f asks qmgr to retry all deferred
// mail; -i and -s ask the flush service to deliver one message or the mail
// for one site.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, FatalError } from "../lib/log.ts";
import { type Config, loadConfig, setupLogging } from "../lib/config/mod.ts";
import { flushQueue, flushQueueFile, flushSite } from "../lib/flush_client.ts";
import { checkQueueUser, listMailQueue } from "../lib/showq_client.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage =
  "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site";

/** sysexits EX_UNAVAILABLE: Postfix's postqueue exits with it on every fatal error. */
const exUnavailable = 69;

/** A fatal error with postqueue's exit status. */
function die(text: string): never {
  try {
    fatal(text);
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, exUnavailable);
    throw err;
  }
}

interface Request {
  mode: "f" | "i" | "j" | "p" | "s";
  arg: string;
  configDir?: string;
  verbose: number;
}

function parseArgs(args: string[], name: string): Request {
  let opts;
  try {
    opts = getopt(args, "c:fi:jps:v");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${name}: ${err.message}`);
    die(usage);
  }
  const req: Request = { mode: "p", arg: "", verbose: 0 };
  let modes = 0;
  for (const { flag, arg = "" } of opts.options) {
    if (flag === "c") req.configDir = arg;
    else if (flag === "v") req.verbose++;
    else {
      modes++;
      req.mode = flag as Request["mode"];
      req.arg = arg;
    }
  }
  // Exactly one action, and no operands.
  if (modes !== 1 || opts.operands.length > 0) die(usage);
  return req;
}

/** postqueue [-v] [-c config_dir] -f | -i queue_id | -j | -p | -s site */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  const req = parseArgs(args, ctx.name);
  let config: Config;
  try {
    config = loadConfig({ configDir: req.configDir, program: ctx.name });
  } catch (err) {
    if (err instanceof FatalError) throw new FatalError(err.message, exUnavailable);
    throw err;
  }
  setupLogging(config, ctx.name, { stderr: true, verbose: req.verbose });
  const openTable = async (spec: string) =>
    (await import("../maps/mod.ts")).openMap(spec, { config });
  if (req.mode === "p" || req.mode === "j") {
    return await listMailQueue(config, req.mode === "p" ? "text" : "json", { openTable });
  }
  await checkQueueUser(config, "authorized_flush_users", "flush the mail queue", openTable);
  switch (req.mode) {
    case "f":
      return await flushQueue(config);
    case "i":
      if (!/^[A-Za-z0-9]{1,100}$/.test(req.arg)) {
        die(`Cannot flush queue ID - invalid name: "${req.arg}"`);
      }
      return await flushQueueFile(config, req.arg);
    case "s":
      return await flushSite(config, req.arg);
  }
}
