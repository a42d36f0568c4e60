// posthorn: one binary for every program of the Postfix family.
//
// The program is basename(argv[0]) (symlinks named sendmail, postconf, smtpd,
// ...); invoked as `posthorn` (or through the runtime, `deno run mod.ts`) the
// first argument names it, busybox style. Only the chosen program's module is
// imported: each import below is a string literal so that `deno compile` and
// `deno bundle` embed exactly these modules.

import process from "node:process";
import { FatalError } from "./lib/log.ts";
import type { ProgramModule } from "./lib/program.ts";

type Loader = () => Promise<ProgramModule>;

/** Program name → module, for every program built so far. */
const programs: Record<string, Loader> = {
  anvil: () => import("./daemons/anvil.ts"),
  bounce: () => import("./daemons/bounce/mod.ts"),
  cleanup: () => import("./daemons/cleanup/mod.ts"),
  discard: () => import("./daemons/discard.ts"),
  error: () => import("./daemons/error.ts"),
  flush: () => import("./daemons/flush/mod.ts"),
  local: () => import("./daemons/local/mod.ts"),
  master: () => import("./daemons/master/master.ts"),
  pickup: () => import("./daemons/pickup/mod.ts"),
  pipe: () => import("./daemons/pipe/mod.ts"),
  postalias: () => import("./cmd/postalias.ts"),
  postcat: () => import("./cmd/postcat.ts"),
  postconf: () => import("./cmd/postconf.ts"),
  postdrop: () => import("./cmd/postdrop.ts"),
  postfix: () => import("./cmd/postfix.ts"),
  postkick: () => import("./cmd/postkick.ts"),
  postlock: () => import("./cmd/postlock.ts"),
  postlog: () => import("./cmd/postlog.ts"),
  postmap: () => import("./cmd/postmap.ts"),
  postqueue: () => import("./cmd/postqueue.ts"),
  postsuper: () => import("./cmd/postsuper.ts"),
  proxymap: () => import("./daemons/proxymap/mod.ts"),
  qmgr: () => import("./daemons/qmgr/mod.ts"),
  qmqpd: () => import("./daemons/qmqpd/mod.ts"),
  scache: () => import("./daemons/scache/mod.ts"),
  sendmail: () => import("./cmd/sendmail.ts"),
  showq: () => import("./daemons/showq/mod.ts"),
  smtp: () => import("./daemons/smtp/mod.ts"),
  smtpd: () => import("./daemons/smtpd/mod.ts"),
  spawn: () => import("./daemons/spawn/mod.ts"),
  tlsmgr: () => import("./daemons/tlsmgr/mod.ts"),
  "trivial-rewrite": () => import("./daemons/trivial_rewrite/mod.ts"),
  verify: () => import("./daemons/verify/mod.ts"),
  virtual: () => import("./daemons/virtual/mod.ts"),
};

/** Names that run another program's module (Postfix's aliases). */
const aliases: Record<string, string> = {
  mailq: "sendmail",
  newaliases: "sendmail",
  nqmgr: "qmgr",
  oqmgr: "qmgr",
  lmtp: "smtp",
  retry: "error",
  proxywrite: "proxymap",
  defer: "bounce",
  trace: "bounce",
};

/** Every program of the Postfix family, built or not, for `posthorn --help`. */
const family = [
  "sendmail",
  "mailq",
  "newaliases",
  "postalias",
  "postcat",
  "postconf",
  "postdrop",
  "postfix",
  "postkick",
  "postlock",
  "postlog",
  "postmap",
  "postqueue",
  "postsuper",
  "master",
  "smtpd",
  "smtp",
  "lmtp",
  "cleanup",
  "qmgr",
  "nqmgr",
  "oqmgr",
  "pickup",
  "trivial-rewrite",
  "local",
  "virtual",
  "pipe",
  "bounce",
  "error",
  "retry",
  "discard",
  "flush",
  "showq",
  "anvil",
  "scache",
  "verify",
  "proxymap",
  "proxywrite",
  "tlsmgr",
  "qmqpd",
  "spawn",
];

/** The names under which this binary answers to itself. */
const selfNames = new Set(["posthorn", "deno", "denort", "posthorn.js"]);

function basename(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? path : path.slice(at + 1);
}

/** Whether `name` (a program or alias) is built into this binary. */
export function isBuilt(name: string): boolean {
  return (aliases[name] ?? name) in programs;
}

function usage(): string {
  const built = family.filter(isBuilt);
  const missing = family.filter((name) => !isBuilt(name));
  return [
    "usage: posthorn PROGRAM [ARGS...]  (or link this binary as PROGRAM)",
    "",
    "programs built in:",
    "  " + built.join(" "),
    ...(missing.length ? ["", "not built yet:", "  " + missing.join(" ")] : []),
    "",
  ].join("\n");
}

/** Resolves the program and runs it; returns the exit status. */
export async function run(argv0: string, args: string[]): Promise<number> {
  let name = basename(argv0);
  if (selfNames.has(name)) {
    if (args.length === 0 || args[0] === "--help" || args[0] === "-h") {
      (args.length === 0 ? console.error : console.log)(usage());
      return args.length === 0 ? 1 : 0;
    }
    name = basename(args[0]);
    args = args.slice(1);
  }
  const program = aliases[name] ?? name;
  const load = programs[program];
  if (!load) {
    const known = family.includes(name) ? "is not built into this posthorn yet" : "is unknown";
    console.error(
      `posthorn: fatal: program "${name}" ${known}; run "posthorn --help" for the list`,
    );
    return 1;
  }
  try {
    const module = await load();
    return await module.main(args, { name, program });
  } catch (err) {
    if (err instanceof FatalError) return err.exitCode;
    throw err;
  }
}

if (import.meta.main) {
  const status = await run(process.argv0, Deno.args);
  Deno.exit(status);
}
