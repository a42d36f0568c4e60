// postfix: the administrator's control program, as Postfix's postfix(1) with
// its postfix-script: start (detached master), start-fg (foreground, for
// containers), stop, abort, reload, status, flush, check, set-permissions and
// post-install, with Postfix's messages (`postfix/postfix-script: starting the
// Postfix mail system`) and exit codes.

import { spawn } from "node:child_process";
import process from "node:process";
import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, info, warn } from "../lib/log.ts";
import type { ProgramContext } from "../lib/program.ts";
import { type Config, configDirectory, loadConfig } from "../lib/config/mod.ts";
import { MasterCfError, parseMasterCf } from "../lib/config/master_cf.ts";
import { closeFd, isLocked, makePipe, pollAsync, POLLIN, readFd } from "../lib/ffi/libc.ts";
import { launchCommand } from "../lib/daemon/launcher.ts";
import { checkMasterCf, MasterCfCheckError } from "../lib/daemon/master_cf_check.ts";
import { masterPidPath, prepareQueue, readMasterPid } from "../lib/daemon/instance.ts";
import { type Credentials, mailOwnerCredentials } from "../lib/daemon/users.ts";
import { queuePath, queueTree } from "../lib/queue/layout.ts";
import { layoutFromConfig } from "../lib/queue/layout.ts";
import { sendTrigger } from "../lib/ipc/trigger.ts";

const usageText = "usage: postfix [-c config_dir] [-Dv] command";
const commandList =
  "start (or stop, reload, abort, flush, check, status, set-permissions, upgrade-configuration, logrotate)";

/** The master's environment variable for its readiness descriptor (daemons/master). */
const READY_FD_ENV = "POSTHORN_READY_FD";
/** Seconds `postfix start` waits for the master to initialise. */
const START_TIMEOUT = 60;

interface Invocation {
  config: Config;
  verbose: number;
  debug: boolean;
  configFlag?: string;
}

/** Entry point: `postfix [-c config_dir] [-Dv] command [args]`. */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name });
  let parsed;
  try {
    parsed = getopt(args, "c:Dv");
  } catch (err) {
    if (err instanceof GetoptError) fatal(usageText);
    throw err;
  }
  let configFlag: string | undefined;
  let verbose = 0;
  let debug = false;
  for (const { flag, arg } of parsed.options) {
    if (flag === "c") configFlag = arg;
    else if (flag === "v") verbose++;
    else if (flag === "D") debug = true;
  }
  const [command, ...rest] = parsed.operands;
  if (!command) fatal(usageText);
  if (configFlag) Deno.env.set("MAIL_CONFIG", configDirectory(configFlag));
  const config = loadConfig({ configDir: configFlag, program: "postfix" });
  scriptLogging(config);
  const inv: Invocation = { config, verbose, debug, configFlag };
  return await runCommand(command, rest, inv);
}

/** Messages come from `postfix/postfix-script`, as Postfix's script logs them. */
function scriptLogging(config: Config): void {
  const syslogName = config.get("syslog_name") || "postfix";
  configureLog({
    program: "postfix-script",
    syslogName,
    maillogFile: config.get("maillog_file"),
    hostname: config.get("myhostname"),
    stderr: true,
    stderrTag: `${syslogName}/postfix-script`,
  });
}

function runCommand(command: string, args: string[], inv: Invocation): Promise<number> | number {
  switch (command) {
    case "start":
    case "start-fg":
      return start(inv, command === "start-fg");
    case "stop":
      return stop(inv);
    case "abort":
      return abort(inv);
    case "reload":
      return signalMaster(inv, "SIGHUP", "refreshing the Postfix mail system");
    case "status":
      return status(inv);
    case "flush":
      return flush(inv);
    case "check":
      return check(inv);
    case "set-permissions":
      return setPermissions(inv);
    case "post-install":
      return postInstall(inv, args);
    default:
      fatal(`unknown command: '${command}'. Usage: postfix ${commandList}`);
  }
}

function running(inv: Invocation): boolean {
  return isLocked(masterPidPath(inv.config));
}

function requireRunning(inv: Invocation): number {
  const pid = running(inv) ? readMasterPid(inv.config) : undefined;
  if (!pid) fatal("the Postfix mail system is not running");
  return pid;
}

function credentials(inv: Invocation): Credentials | undefined {
  return mailOwnerCredentials(inv.config);
}

/** check-fatal: the queue tree exists and master.cf is present (the master judges its content). */
function checkFatal(inv: Invocation): string {
  prepareQueue(inv.config, credentials(inv));
  const file = `${inv.config.configDir}/master.cf`;
  try {
    return Deno.readTextFileSync(file);
  } catch {
    fatal(`no ${file} file found`);
  }
}

/** `postfix check` also reads master.cf as the master would (Posthorn's addition). */
function checkMasterCfText(inv: Invocation, source: string): void {
  const file = `${inv.config.configDir}/master.cf`;
  try {
    checkMasterCf(source, file);
    parseMasterCf(source, file);
  } catch (err) {
    if (err instanceof MasterCfCheckError || err instanceof MasterCfError) fatal(err.message);
    throw err;
  }
}

/** check-warn: ownership and permissions of the instance's folders. */
function checkWarn(inv: Invocation): void {
  const config = inv.config;
  const root = Deno.uid() === 0;
  const me = Deno.uid() ?? 0;
  const owner = credentials(inv)?.uid ?? me;
  const queue = config.get("queue_directory");
  const expectOwner = (path: string, uid: number, label: string) => {
    try {
      const st = Deno.statSync(path);
      if (st.uid !== uid) warn(`not owned by ${label}: ${path}`);
      if (st.mode !== null && (st.mode & 0o022) && !isSticky(st.mode)) {
        warn(`group or other writable: ${path}`);
      }
    } catch {
      // Missing folders were created by check-fatal; others are not ours to judge.
    }
  };
  const rootLabel = root ? "root" : Deno.env.get("USER") ?? String(Deno.uid());
  const ownerLabel = root ? config.get("mail_owner") : rootLabel;
  expectOwner(`${queue}/.`, me, rootLabel);
  expectOwner(`${queue}/pid`, me, rootLabel);
  expectOwner(`${config.configDir}/.`, me, rootLabel);
  const data = config.get("data_directory");
  if (data) expectOwner(`${data}/.`, owner, ownerLabel);
  for (const spec of queueTree) {
    if (spec.mailOwner) {
      expectOwner(queuePath(layoutFromConfig(config), spec.name), owner, ownerLabel);
    }
  }
}

function isSticky(mode: number): boolean {
  return (mode & 0o1000) !== 0;
}

async function start(inv: Invocation, foreground: boolean): Promise<number> {
  if (running(inv)) fatal("the Postfix mail system is already running");
  checkFatal(inv);
  checkWarn(inv);
  info("starting the Postfix mail system");
  const masterArgs = [...(inv.configFlag ? ["-c", inv.config.configDir] : [])];
  for (let i = 0; i < inv.verbose; i++) masterArgs.push("-v");
  if (inv.debug) masterArgs.push("-D");
  return foreground ? await startForeground(inv, masterArgs) : await startDetached(inv, masterArgs);
}

/** `postfix start`: a detached master, and a wait for it to report its initialisation. */
async function startDetached(inv: Invocation, masterArgs: string[]): Promise<number> {
  const cmd = launchCommand(inv.config, "master", masterArgs);
  const [readEnd, writeEnd] = makePipe(true);
  const child = spawn(cmd.file, cmd.args, {
    argv0: cmd.argv0,
    stdio: ["ignore", "ignore", "ignore", writeEnd],
    env: { ...process.env, [READY_FD_ENV]: "3", MAIL_CONFIG: inv.config.configDir },
    detached: true,
  });
  let exited = false;
  child.on("exit", () => exited = true);
  child.on("error", () => exited = true);
  closeFd(writeEnd);
  const answer = await readReady(readEnd, () => exited);
  closeFd(readEnd);
  child.unref();
  if (answer === "ok") return 0;
  // The master's own reason (also in maillog_file), then Postfix's verdict.
  if (answer) {
    process.stderr.write(`${inv.config.get("syslog_name") || "postfix"}/master: ${answer}\n`);
  }
  fatal("mail system startup failed");
}

/** Reads the master's one-line readiness report ("ok" or "fatal: ..."). */
async function readReady(fd: number, gone: () => boolean): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + START_TIMEOUT * 1000;
  while (Date.now() < deadline) {
    await pollAsync([{ fd, events: POLLIN }], 200);
    const n = readFd(fd, buf);
    if (n > 0) {
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (text.includes("\n")) return text.split("\n")[0];
    } else if (n === 0 || gone()) {
      // End of file: the master exited (or closed the pipe) without a word.
      return text.trim();
    }
  }
  return "";
}

/** `postfix start-fg`: the master in the foreground; signals are passed on to it. */
function startForeground(inv: Invocation, masterArgs: string[]): Promise<number> {
  const cmd = launchCommand(inv.config, "master", masterArgs);
  const child = spawn(cmd.file, cmd.args, {
    argv0: cmd.argv0,
    stdio: "inherit",
    env: { ...process.env, MAIL_CONFIG: inv.config.configDir },
  });
  // Deno.kill, not child.kill: the latter was seen to end the master by the
  // signal itself instead of letting its handler run to completion.
  const forward = (signal: Deno.Signal) => () => {
    try {
      if (child.pid) Deno.kill(child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  const onTerm = forward("SIGTERM");
  const onInt = forward("SIGTERM");
  const onHup = forward("SIGHUP");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGHUP", onHup);
  return new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      Deno.removeSignalListener("SIGTERM", onTerm);
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGHUP", onHup);
      resolve(code ?? (signal ? 1 : 0));
    });
    child.on("error", (err) => {
      scriptLogging(inv.config);
      warn(`exec ${cmd.path}: ${err.message}`);
      resolve(1);
    });
  });
}

function kill(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch (err) {
    fatal(`kill ${pid}: ${(err as Error).message}`);
  }
}

/** `postfix stop`: SIGTERM to the master, five seconds' wait, then SIGKILL. */
async function stop(inv: Invocation): Promise<number> {
  const pid = requireRunning(inv);
  info("stopping the Postfix mail system");
  kill(pid, "SIGTERM");
  for (let i = 0; i < 5; i++) {
    if (await waitUnlocked(inv, 1000)) return 0;
    info("waiting for the Postfix mail system to terminate");
  }
  warn("stopping the Postfix mail system with force");
  kill(pid, "SIGKILL");
  return 0;
}

async function waitUnlocked(inv: Invocation, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!running(inv)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !running(inv);
}

/** `postfix abort`: the master and its children are told to stop at once. */
function abort(inv: Invocation): number {
  const pid = requireRunning(inv);
  info("aborting the Postfix mail system");
  kill(pid, "SIGTERM");
  return 0;
}

function signalMaster(inv: Invocation, signal: Deno.Signal, message: string): number {
  const pid = requireRunning(inv);
  info(message);
  kill(pid, signal);
  return 0;
}

function status(inv: Invocation): number {
  const pid = running(inv) ? readMasterPid(inv.config) : undefined;
  if (!pid) {
    info("the Postfix mail system is not running");
    return 1;
  }
  info(`the Postfix mail system is running: PID: ${pid}`);
  return 0;
}

/** `postfix flush`: asks the queue manager to retry deferred mail now (postqueue -f). */
async function flush(inv: Invocation): Promise<number> {
  const queue = inv.config.get("queue_directory");
  try {
    Deno.statSync(queue);
  } catch {
    fatal(`no Postfix queue directory ${queue}!`);
  }
  requireRunning(inv);
  const qmgr = `${queue}/public/${inv.config.get("queue_service_name") || "qmgr"}`;
  try {
    Deno.statSync(qmgr);
  } catch {
    fatal("cannot flush the queue: no queue manager (qmgr service) runs in this instance");
  }
  try {
    // Postfix's deferred-mail flush: forget dead sites, scan deferred, scan incoming.
    await sendTrigger(qmgr, "FDI");
  } catch (err) {
    fatal(`cannot flush the queue: ${(err as Error).message}`);
  }
  return 0;
}

function check(inv: Invocation): number {
  checkMasterCfText(inv, checkFatal(inv));
  checkWarn(inv);
  return 0;
}

/** `postfix set-permissions`: owners and modes of the queue tree, as post-install sets them. */
function setPermissions(inv: Invocation): number {
  const owner = credentials(inv);
  const layout = layoutFromConfig(inv.config);
  prepareQueue(inv.config, owner);
  for (const spec of queueTree) {
    const path = queuePath(layout, spec.name);
    try {
      if (owner && spec.mailOwner) Deno.chownSync(path, owner.uid, owner.gid);
      Deno.chmodSync(path, spec.mode);
    } catch (err) {
      warn(`${path}: ${(err as Error).message}`);
    }
  }
  const data = inv.config.get("data_directory");
  if (data && owner) Deno.chownSync(data, owner.uid, owner.gid);
  return 0;
}

/** `postfix post-install`: creates what is missing (name=value settings are accepted). */
function postInstall(inv: Invocation, args: string[]): number {
  for (const arg of args) {
    if (
      !/^[a-z_]+=/.test(arg) &&
      !/^(create-missing|set-permissions|upgrade-configuration)$/.test(arg)
    ) {
      fatal(`post-install: bad argument: ${arg}`);
    }
  }
  if (args.includes("set-permissions")) return setPermissions(inv);
  prepareQueue(inv.config, credentials(inv));
  return 0;
}
