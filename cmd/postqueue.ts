// postqueue: the unprivileged queue command, as Postfix's postqueue(1).
//
// -p lists the queue in mailq's format and -j as JSON lines, both through
// the showq service (or, with the mail system down, showq run stand-alone
// for a user who may read the queue); -f asks qmgr to retry all deferred
// mail; -i and -s ask the flush service to deliver one message or the mail
// for one site.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, FatalError, warn } from "../lib/log.ts";
import { type Config, loadConfig, setupLogging } from "../lib/config/mod.ts";
import { sendTrigger } from "../lib/ipc/trigger.ts";
import { AttrReader, encodeAttrs } from "../lib/ipc/attr.ts";
import { describe } from "../lib/queue/file.ts";
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
      return await askFlush(config, { request: "send_file", queue_id: req.arg }, req.arg);
    case "s":
      return await askFlush(config, { request: "send_site", site: req.arg }, req.arg);
  }
}

/**
 * -f: Postfix's mail_flush_deferred: tell qmgr to forget dead destinations
 * (F) and scan every queue ignoring retry times (A), then scan the deferred
 * (D) and incoming (I) queues now.
 */
async function flushQueue(config: Config): Promise<number> {
  const service = config.get("qmgr_service_name") || "qmgr";
  const path = `${config.get("queue_directory")}/public/${service}`;
  try {
    Deno.statSync(path);
  } catch (err) {
    warn(`unable to look up public/${service}: ${describe(err)}`);
    die("Cannot flush mail queue - mail system is down");
  }
  try {
    await sendTrigger(path, "FADI", 1000 * config.time("trigger_timeout"));
  } catch {
    die("Cannot flush mail queue - mail system is down");
  }
  return 0;
}

/** The flush service's replies (Postfix's flush_clnt status codes). */
const flushStatus = { ok: "0", fail: "1", bad: "3", deny: "4" };

/** -i and -s: one request to the flush service (Postfix's attribute protocol). */
async function askFlush(
  config: Config,
  request: Record<string, string>,
  what: string,
): Promise<number> {
  const service = config.get("flush_service_name") || "flush";
  const path = `${config.get("queue_directory")}/public/${service}`;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    warn(`connect to public/${service}: ${describe(err)}`);
    die("Cannot flush mail queue - mail system is down");
  }
  let status: string | undefined;
  try {
    await conn.write(encodeAttrs(request));
    const reader = new AttrReader();
    const buf = new Uint8Array(4096);
    while (status === undefined) {
      const n = await conn.read(buf);
      if (n === null) break;
      const [reply] = reader.push(buf.slice(0, n));
      if (reply) status = reply.get("status") ?? "";
    }
  } catch {
    status = undefined;
  } finally {
    conn.close();
  }
  if (status === flushStatus.ok) return 0;
  if (status === flushStatus.deny) {
    die(
      request.request === "send_site"
        ? `Flush service is not configured for destination "${what}"`
        : `Cannot flush queue ID - no such message: "${what}"`,
    );
  }
  if (status === flushStatus.bad) die(`Invalid request: "${what}"`);
  die("Cannot flush mail queue - mail system is down");
}
