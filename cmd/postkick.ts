// postkick: kick a mail service, as postkick(1).
//
// Sends a request (usually one letter, such as W to wake any service or I,
// D, A, F to qmgr) to the service's fifo or UNIX-domain socket under the
// queue directory: public/NAME or private/NAME, as the class says.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, warn } from "../lib/log.ts";
import { loadConfig, setupLogging } from "../lib/config/mod.ts";
import { sendTrigger } from "../lib/ipc/trigger.ts";
import { describe } from "../lib/queue/file.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage = "usage: postkick [-c config_dir] [-v] class service request";

/** postkick [-c config_dir] [-v] class service request */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  let opts;
  try {
    opts = getopt(args, "c:v");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  let configDir: string | undefined;
  let verbose = 0;
  for (const { flag, arg } of opts.options) {
    if (flag === "c") configDir = arg;
    else if (flag === "v") verbose++;
  }
  if (opts.operands.length !== 3) fatal(usage);
  const [klass, service, request] = opts.operands;
  const config = loadConfig({ configDir, program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose });
  const relative = `${klass}/${service}`;
  const path = `${config.get("queue_directory")}/${relative}`;
  let exists = true;
  try {
    Deno.statSync(path);
  } catch (err) {
    exists = false;
    warn(`unable to look up ${relative}: ${describe(err)}`);
  }
  try {
    if (!exists) throw new Deno.errors.NotFound(relative);
    await sendTrigger(path, request, 1000 * config.time("trigger_timeout"));
  } catch {
    warn(`Cannot contact class ${klass} service ${service} - perhaps the mail system is down`);
    return 1;
  }
  return 0;
}
