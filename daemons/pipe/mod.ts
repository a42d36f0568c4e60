// pipe: delivery to external commands, as Postfix's pipe(8).
//
// Takes delivery requests from qmgr and hands each message to the command
// named by argv= at the end of the service's master.cf entry, with the
// request's facts as ${macros}, as user= (never root), within
// TRANSPORT_time_limit; the command's exit status decides each recipient's
// fate per <sysexits.h> (lib/deliver/command.ts).

import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, singleServer } from "../../lib/daemon/server.ts";
import { agentEnvFromConfig, handleDeliveryConnection } from "../../lib/deliver/agent.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { fatal } from "../../lib/log.ts";
import { parsePipeAttributes } from "./attributes.ts";
import { deliverPipe, type PipeSettings } from "./deliver.ts";

/** The settings of a pipe service from its configuration and master.cf arguments. */
export function pipeSettings(d: DaemonContext): PipeSettings {
  const config = d.config;
  const attrs = parsePipeAttributes(d.args.operands, config);
  const own = `${d.service}_time_limit`;
  return {
    service: d.service,
    attrs,
    layout: layoutFromConfig(config),
    queueDirectory: config.get("queue_directory"),
    timeLimit: config.time(config.isSet(own) ? own : "command_time_limit", "s"),
    delimiters: config.get("recipient_delimiter"),
    exportEnvironment: config.list("export_environment"),
    importEnvironment: config.list("import_environment"),
    masterCf: `${config.configDir}/master.cf`,
  };
}

/** The real user id of this process's parent (the master), from /proc; undefined when unknown. */
export function parentUid(): number | undefined {
  try {
    // Field 4 of /proc/self/stat, after the parenthesised command name.
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const ppid = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
    const status = Deno.readTextFileSync(`/proc/${ppid}/status`);
    const m = /^Uid:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A root master that started pipe unprivileged (master.cf's unprivileged
 * column not n) made it mail_owner: its commands would then run as the
 * owner of the queue. Refused; a non-root instance, where everything runs
 * as one user, is fine.
 */
function checkPrivileged(d: DaemonContext, user: string): void {
  if (!d.managed || Deno.uid() === 0 || parentUid() !== 0) return;
  fatal(
    `service ${d.service}: running unprivileged, cannot run commands as user=${user}: ` +
      "set the master.cf unprivileged column to n",
  );
}

/** Runs a pipe service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: ReturnType<typeof agentEnvFromConfig>;
  let settings: PipeSettings;
  // One delivery per process at a time, as Postfix's pipe: master.cf's
  // process limit then bounds how many commands run at once.
  return singleServer(
    args,
    ctx,
    (conn) => handleDeliveryConnection(conn, env, (s) => deliverPipe(s, settings)),
    {
      init(d) {
        settings = pipeSettings(d);
        checkPrivileged(d, settings.attrs.user);
        // Commands start with umask 077, as under Postfix's pipe: files a
        // command creates are its user's alone unless it says otherwise.
        Deno.umask(0o077);
        env = agentEnvFromConfig(d.config);
      },
    },
  );
}
