// The command line the master gives every daemon, as Postfix's master does:
// `-n service -t type [-u] [-s count] [-v] [-o name=value ...]`, plus
// Posthorn's `-L address` for a daemon started on its own (tests, debugging)
// that creates its own listening socket instead of inheriting one.

import { getopt, GetoptError } from "../getopt.ts";

/** A daemon's parsed command line. */
export interface DaemonArgs {
  /** The master.cf service name (`submission`), or the program name standalone. */
  service: string;
  /** The master.cf service type: inet, unix, unix-dgram, fifo or pass. */
  type: string;
  /** The number of inherited listening descriptors. */
  socketCount: number;
  /** The -o name=value settings, in order. */
  overrides: Record<string, string>;
  /** -v count. */
  verbose: number;
  /** -u: the master.cf unprivileged column was set. */
  unprivileged: boolean;
  /** -c: the master.cf chroot column was set (accepted, see docs/ARCHITECTURE.md). */
  chroot: boolean;
  /** -L: listen here instead of on inherited descriptors (`unix:PATH`, `inet:HOST:PORT`, `fifo:PATH`). */
  listen: string[];
  /** The operands after the options. */
  operands: string[];
}

/** An unusable daemon command line, with getopt's wording. */
export class DaemonArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DaemonArgsError";
  }
}

/** Parses a daemon's arguments; `program` is the default service name. */
export function parseDaemonArgs(args: string[], program: string): DaemonArgs {
  const parsed: DaemonArgs = {
    service: program,
    type: "unix",
    socketCount: 1,
    overrides: {},
    verbose: 0,
    unprivileged: false,
    chroot: false,
    listen: [],
    operands: [],
  };
  let result;
  try {
    result = getopt(args, "cdDL:n:o:s:St:uvVz");
  } catch (err) {
    if (err instanceof GetoptError) throw new DaemonArgsError(err.message);
    throw err;
  }
  for (const { flag, arg = "" } of result.options) {
    if (flag === "n") parsed.service = arg;
    else if (flag === "t") parsed.type = arg;
    else if (flag === "s") parsed.socketCount = Math.max(0, parseInt(arg, 10) || 0);
    else if (flag === "v") parsed.verbose++;
    else if (flag === "u") parsed.unprivileged = true;
    else if (flag === "c") parsed.chroot = true;
    else if (flag === "L") parsed.listen.push(arg);
    else if (flag === "o") {
      const eq = arg.indexOf("=");
      if (eq <= 0) throw new DaemonArgsError(`bad -o option: ${arg}`);
      parsed.overrides[arg.slice(0, eq).trim()] = arg.slice(eq + 1).trim();
    }
  }
  parsed.operands = result.operands;
  return parsed;
}
