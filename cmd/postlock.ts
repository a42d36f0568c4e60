// postlock: lock a mail folder and run a command, as postlock(1).
//
// Locks the folder (created when missing) the way local delivery locks a
// mailbox (mailbox_delivery_lock, or -l: dotlock, flock, fcntl; with
// deliver_lock_attempts, deliver_lock_delay, stale_lock_time), runs the
// command with the lock held, releases it and exits with the command's
// status. Failing to lock, or any other trouble of postlock's own, exits
// with 75 (EX_TEMPFAIL), as the reference does.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, FatalError, panicNoExit } from "../lib/log.ts";
import { loadConfig, setupLogging } from "../lib/config/mod.ts";
import { errorText, type LockStyle, openMailbox, parseLockStyles } from "../lib/mailbox/mod.ts";
import type { ProgramContext } from "../lib/program.ts";

/** sysexits.h EX_TEMPFAIL: what postlock exits with when it cannot do its part. */
export const EX_TEMPFAIL = 75;

/** postlock [-c config_dir] [-l lock_style] [-v] folder command... */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  try {
    return await postlock(args, ctx);
  } catch (err) {
    // A fatal error of postlock's own is a temporary failure for the caller.
    if (err instanceof FatalError) return EX_TEMPFAIL;
    throw err;
  }
}

async function postlock(args: string[], ctx: ProgramContext): Promise<number> {
  const usage = `usage: ${ctx.name} [-c config_dir] [-l lock_style] [-v] folder command...`;
  let opts;
  try {
    opts = getopt(args, "c:l:v");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  let configDir: string | undefined;
  let lockStyle: string | undefined;
  let verbose = 0;
  for (const { flag, arg } of opts.options) {
    if (flag === "c") configDir = arg;
    else if (flag === "l") lockStyle = arg;
    else if (flag === "v") verbose++;
  }
  if (opts.operands.length < 2) fatal(usage);
  const [folder, command, ...commandArgs] = opts.operands;
  const config = loadConfig({ configDir, program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose });
  let styles: LockStyle[];
  try {
    styles = parseLockStyles(lockStyle ?? config.get("mailbox_delivery_lock"));
  } catch (err) {
    fatal((err as Error).message);
  }
  const opened = await openMailbox(folder, {
    styles,
    attempts: config.int("deliver_lock_attempts"),
    delay: config.time("deliver_lock_delay"),
    staleTime: config.time("stale_lock_time"),
  });
  if (!opened.ok) fatal(`open file ${folder}: ${opened.text}`);
  try {
    return await run(command, commandArgs);
  } finally {
    opened.mailbox.release();
  }
}

/** Runs the command with standard input and output inherited; its exit status, 1 when killed. */
async function run(command: string, args: string[]): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    // The reference's child reports a failed exec and exits with 1.
    const code = /\(os error (\d+)\)/.exec((err as Error).message);
    const text = code ? errorText(Number(code[1])) : (err as Error).message;
    panicNoExit("fatal", `execvp ${command}: ${text}`);
    return 1;
  }
  const status = await child.status;
  return status.signal ? 1 : status.code;
}
