// spawn: the external command spawner, as Postfix's spawn(8).
//
// The Postfix equivalent of inetd: for each connection on its master.cf
// service it runs the command given by the service's `argv=` attribute as
// the `user=` attribute's user, with the command's standard input, output
// and error connected to the connection. The runtime cannot hand a socket to
// a child as its standard input, so the bytes are pumped both ways between
// the connection and the child's pipes (end of input from the client closes
// the child's standard input; the child's exit ends the connection). The
// command is killed after SERVICE_time_limit (default command_time_limit);
// abnormal exits are logged as Postfix logs them.

import type * as net from "node:net";
import { signalNumber } from "../../lib/signals.ts";
import { type ChildProcess, spawn as spawnChild } from "node:child_process";
import type { Config } from "../../lib/config/mod.ts";
import { type DaemonContext, singleServer } from "../../lib/daemon/server.ts";
import { getpwnam } from "../../lib/ffi/libc.ts";
import { debug, fatal, panicNoExit, warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";

/** What the service's attributes say to run, and how. */
export interface SpawnAttributes {
  uid: number;
  gid: number;
  /** The command and its arguments (argv[0] is the program path). */
  argv: string[];
  /** Seconds the command may run. */
  timeLimit: number;
}

/** Looks up a group name in /etc/group. */
function groupId(name: string): number | undefined {
  let text = "";
  try {
    text = Deno.readTextFileSync("/etc/group");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 3) return Number(fields[2]);
  }
  return undefined;
}

/**
 * Parses the master.cf command attributes (`user=name[:group]`, then
 * `argv=command args...`, which must come last) with Postfix's fatal
 * wording for each mistake; refuses root, the mail system owner and their
 * groups.
 */
export function parseSpawnAttributes(
  words: string[],
  service: string,
  config: Config,
): SpawnAttributes {
  if (words.length === 0) fatal("missing user= attribute");
  // Without user= the command would run as root, which is refused below.
  let uid = 0;
  let gid = 0;
  let argv: string[] | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    const lower = word.toLowerCase();
    if (lower.startsWith("user=")) {
      const [user, group] = word.slice(5).split(":", 2);
      const pw = getpwnam(user);
      if (!pw) fatal(`unknown user name: ${user}`);
      uid = pw.uid;
      gid = pw.gid;
      if (group !== undefined) {
        const g = groupId(group);
        if (g === undefined) fatal(`unknown group name: ${group}`);
        gid = g;
      }
    } else if (lower.startsWith("argv=")) {
      argv = [word.slice(5), ...words.slice(i + 1)];
      break;
    } else {
      fatal(`unknown attribute name: ${word}`);
    }
  }
  if (!argv || !argv[0]) fatal("missing argv= attribute");
  if (uid === 0) fatal("request to deliver as root");
  const owner = getpwnam(config.get("mail_owner"));
  if (owner && owner.uid === uid) fatal("request to deliver as mail system owner");
  if (gid === 0) fatal(`request to use privileged group id ${gid}`);
  if (owner && owner.gid === gid) fatal(`request to use mail system owner group id ${gid}`);
  return { uid, gid, argv, timeLimit: serviceTimeLimit(config, service) };
}

/** SERVICE_time_limit when set, else command_time_limit (Postfix's get_mail_conf_time2). */
export function serviceTimeLimit(config: Config, service: string): number {
  const name = `${service}_time_limit`;
  const limit = config.isSet(name) ? config.time(name, "s") : config.time("command_time_limit");
  if (limit < 1) fatal(`invalid ${name} parameter value ${limit} < 1`);
  return limit;
}

/** The environment a non-Postfix command gets: export_environment only. */
export function exportedEnvironment(config: Config): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of config.list("export_environment")) {
    const eq = item.indexOf("=");
    if (eq > 0) {
      env[item.slice(0, eq)] = item.slice(eq + 1);
      continue;
    }
    const value = Deno.env.get(item);
    if (value !== undefined) env[item] = value;
  }
  return env;
}

/** How the command ended, as node reports it. */
interface Outcome {
  code: number | null;
  signal: string | null;
  /** The command could not be started (the text of the error). */
  failed?: string;
}

/** Logs an unsuccessful end as Postfix's spawn does; a clean exit is silent. */
export function logOutcome(command: string, outcome: Outcome): void {
  if (outcome.failed !== undefined) {
    // Postfix's child logs this (with the reference's spelling) before its
    // exec fails, then exits 1.
    panicNoExit("fatal", `spawn_comand: execvp ${command}: ${outcome.failed}`);
    warn(`command ${command} exit status 1`);
    return;
  }
  if (outcome.signal) {
    const n = signalNumber(outcome.signal);
    warn(`command ${command} killed by signal ${n}`);
  } else if (outcome.code !== 0 && outcome.code !== null) {
    warn(`command ${command} exit status ${outcome.code}`);
  }
}

function errnoText(err: Error): string {
  const code = (err as { code?: string }).code;
  if (code === "ENOENT") return "No such file or directory";
  if (code === "EACCES") return "Permission denied";
  return err.message;
}

/** Whether the command may run as `uid` from this process. */
function checkPrivileges(attr: SpawnAttributes): void {
  if (Deno.uid() !== 0 && Deno.uid() !== attr.uid) {
    fatal(`setgid(${attr.gid}): Operation not permitted`);
  }
}

/** Runs the command for one connection, pumping bytes both ways; resolves when it has ended. */
export function runCommand(
  conn: net.Socket,
  attr: SpawnAttributes,
  env: Record<string, string>,
): Promise<void> {
  checkPrivileges(attr);
  const asOther = Deno.uid() === 0;
  const command = attr.argv[0];
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawnChild(command, attr.argv.slice(1), {
        stdio: ["pipe", "pipe", "pipe"],
        env,
        cwd: "/",
        uid: asOther ? attr.uid : undefined,
        gid: asOther ? attr.gid : undefined,
        // Its own process group, so that the time limit kills its children too.
        detached: true,
      });
    } catch (err) {
      logOutcome(command, { code: null, signal: null, failed: errnoText(err as Error) });
      resolve();
      return;
    }
    let settled = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      // Postfix logs this and nothing more about the killed command.
      timedOut = true;
      warn(`${command}: process id ${child.pid}: command time limit exceeded`);
      try {
        Deno.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, attr.timeLimit * 1000);
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!timedOut) logOutcome(command, outcome);
      conn.end();
      resolve();
    };
    child.on("error", (err) => finish({ code: null, signal: null, failed: errnoText(err) }));
    pump(conn, child);
    // "close": the exit and the end of its output, so nothing it wrote is lost.
    child.on("close", (code, signal) => finish({ code, signal }));
  });
}

/** Connects the client and the child's standard streams. */
function pump(conn: net.Socket, child: ChildProcess): void {
  const stdin = child.stdin!;
  // The client's end of input must not end the command's output to it.
  conn.allowHalfOpen = true;
  conn.on("data", (b: Uint8Array) => {
    if (!stdin.destroyed && !stdin.write(b)) {
      conn.pause();
      stdin.once("drain", () => conn.resume());
    }
  });
  conn.on("end", () => stdin.end());
  conn.on("error", (err) => {
    debug(`client: ${err.message}`);
    stdin.destroy();
  });
  // A command that stops reading (or exits) must not take spawn down with EPIPE.
  stdin.on("error", () => conn.pause());
  for (const out of [child.stdout!, child.stderr!]) {
    out.on("data", (b: Uint8Array) => {
      if (!conn.destroyed && !conn.write(b)) {
        out.pause();
        conn.once("drain", () => out.resume());
      }
    });
  }
}

/** Runs spawn under the daemon runtime: one command at a time, as Postfix's spawn. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let attr: SpawnAttributes | undefined;
  let env: Record<string, string> = {};
  return singleServer(args, ctx, (conn) => runCommand(conn, attr!, env), {
    // The command's own time limit applies; the request watchdog must not cut it short.
    requestTimeout: 20 * 86400,
    init(d: DaemonContext) {
      attr = parseSpawnAttributes(d.args.operands, d.service, d.config);
      env = exportedEnvironment(d.config);
    },
  });
}
