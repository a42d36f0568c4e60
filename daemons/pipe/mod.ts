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
        // Commands start with umask 077, as under Postfix's pipe: files a
        // command creates are its user's alone unless it says otherwise.
        Deno.umask(0o077);
        env = agentEnvFromConfig(d.config);
      },
    },
  );
}
