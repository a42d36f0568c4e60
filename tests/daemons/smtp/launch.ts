// Test launcher for relay tests: the master, the postfix command and the
// daemons of the relay path (smtpd in, cleanup, qmgr, trivial-rewrite,
// bounce, smtp/lmtp out) imported directly, anything else through mod.ts.

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
  smtpd: () => import("../../../daemons/smtpd/mod.ts"),
  smtp: () => import("../../../daemons/smtp/mod.ts"),
};

const aliases: Record<string, string> = {
  defer: "bounce",
  trace: "bounce",
  retry: "error",
  nqmgr: "qmgr",
  lmtp: "smtp",
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
