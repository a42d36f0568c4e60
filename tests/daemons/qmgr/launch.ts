// Test launcher for whole-pipeline tests: the master, the postfix command
// and the daemons of the delivery path by name, each imported directly (so
// the test does not depend on mod.ts listing them), anything else through
// mod.ts.

import { FatalError } from "../../../lib/log.ts";
import type { ProgramModule } from "../../../lib/program.ts";
import { run } from "../../../mod.ts";

const programs: Record<string, () => Promise<ProgramModule>> = {
  master: () => import("../../../daemons/master/master.ts"),
  postfix: () => import("../../../cmd/postfix.ts"),
  qmgr: () => import("../../../daemons/qmgr/mod.ts"),
  bounce: () => import("../../../daemons/bounce/mod.ts"),
  error: () => import("../../../daemons/error.ts"),
  discard: () => import("../../../daemons/discard.ts"),
  "trivial-rewrite": () => import("../../../daemons/trivial_rewrite/mod.ts"),
  cleanup: () => import("../../../daemons/cleanup/mod.ts"),
  pickup: () => import("../../../daemons/pickup/mod.ts"),
};

const aliases: Record<string, string> = {
  defer: "bounce",
  trace: "bounce",
  retry: "error",
  nqmgr: "qmgr",
  oqmgr: "qmgr",
};

const [name, ...args] = Deno.args;
const program = aliases[name] ?? name;
let status: number;
if (program in programs) {
  try {
    status = await (await programs[program]()).main(args, { name, program });
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
    status = err.exitCode;
  }
} else {
  status = await run("posthorn", Deno.args);
}
Deno.exit(status);
