// How the master starts a service's command, and how `postfix` starts the
// master: `daemon_directory/COMMAND` with argv[0] = COMMAND (in an installed
// tree those are links to the posthorn binary or its launcher), or, when
// running from source, a launcher command line named by $POSTHORN_LAUNCHER or
// the main.cf parameter posthorn_launcher (for example
// `deno run -A --unstable-ffi --unstable-net /src/posthorn/mod.ts`), to which
// the program name is appended as the first argument, busybox style.

import type { Config } from "../config/mod.ts";

/** The environment variable naming the launcher; it wins over main.cf. */
export const LAUNCHER_ENV = "POSTHORN_LAUNCHER";
/** The main.cf parameter naming the launcher (Posthorn's own). */
export const LAUNCHER_PARAMETER = "posthorn_launcher";

/** A resolved command: the file to execute, its arguments, and argv[0]. */
export interface LaunchCommand {
  file: string;
  args: string[];
  argv0?: string;
  /** The name the master logs the process under (Postfix logs the path). */
  path: string;
}

/** The launcher words in force, or [] to run daemon_directory/COMMAND. */
export function launcherWords(config: Config): string[] {
  const text = Deno.env.get(LAUNCHER_ENV) ?? config.get(LAUNCHER_PARAMETER);
  return text.trim() ? text.trim().split(/\s+/) : [];
}

/** The command that runs `program` with `args` under this configuration. */
export function launchCommand(config: Config, program: string, args: string[]): LaunchCommand {
  const path = program.startsWith("/") ? program : `${config.get("daemon_directory")}/${program}`;
  const words = launcherWords(config);
  if (words.length && !program.startsWith("/")) {
    return { file: words[0], args: [...words.slice(1), program, ...args], path };
  }
  return { file: path, args, argv0: program.slice(program.lastIndexOf("/") + 1), path };
}
