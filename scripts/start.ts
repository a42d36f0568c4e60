// The embedded default instance (`deno task start`): creates, if absent, a
// self-contained Posthorn instance in one folder (./instance by default, or
// the folder named on the command line) and runs `postfix start-fg` in it.
// Configuration, queue and data live inside the folder; the log goes to
// standard output; services listen on 127.0.0.1 only. Started by root, the
// daemons run as mail_owner (postfix, or a `posthorn` system user created for
// the purpose); started by an ordinary user, everything runs as that user.
// Ctrl-C or SIGTERM stops the master and every daemon.
//
// Run as `start.ts --run PROGRAM ARGS...` it is the instance's launcher for
// the programs mod.ts does not dispatch yet (the master and postfix).

import { isBuilt, run } from "../mod.ts";
import { FatalError } from "../lib/log.ts";
import { getpwnam } from "../lib/ffi/libc.ts";

const root = new URL("..", import.meta.url).pathname;
const self = new URL(import.meta.url).pathname;
const denoFlags = ["run", "-A", "--unstable-ffi", "--unstable-net"];
/** Who mail to NAME@localhost reaches in the examples: the user running the instance. */
const localUser = Deno.uid() === 0 ? "root" : Deno.env.get("USER") ?? "you";

/** Postfix's default services, in master.cf order; only the built ones are written. */
const defaultServices: [string, string][] = [
  ["smtpd", "127.0.0.1:2525 inet  n       -       n       -       -       smtpd"],
  ["pickup", "pickup    unix  n       -       n       60      1       pickup"],
  ["cleanup", "cleanup   unix  n       -       n       -       0       cleanup"],
  ["qmgr", "qmgr      unix  n       -       n       300     1       qmgr"],
  ["tlsmgr", "tlsmgr    unix  -       -       n       1000?   1       tlsmgr"],
  ["trivial-rewrite", "rewrite   unix  -       -       n       -       -       trivial-rewrite"],
  ["bounce", "bounce    unix  -       -       n       -       0       bounce"],
  ["bounce", "defer     unix  -       -       n       -       0       bounce"],
  ["bounce", "trace     unix  -       -       n       -       0       bounce"],
  ["verify", "verify    unix  -       -       n       -       1       verify"],
  ["flush", "flush     unix  n       -       n       1000?   0       flush"],
  ["proxymap", "proxymap  unix  -       -       n       -       -       proxymap"],
  ["proxymap", "proxywrite unix -       -       n       -       1       proxymap"],
  ["smtp", "smtp      unix  -       -       n       -       -       smtp"],
  ["smtp", "relay     unix  -       -       n       -       -       smtp"],
  ["showq", "showq     unix  n       -       n       -       -       showq"],
  ["error", "error     unix  -       -       n       -       -       error"],
  ["error", "retry     unix  -       -       n       -       -       error"],
  ["discard", "discard   unix  -       -       n       -       -       discard"],
  ["local", "local     unix  -       n       n       -       -       local"],
  ["virtual", "virtual   unix  -       n       n       -       -       virtual"],
  ["lmtp", "lmtp      unix  -       -       n       -       -       lmtp"],
  ["anvil", "anvil     unix  -       -       n       -       1       anvil"],
  ["scache", "scache    unix  -       -       n       -       1       scache"],
];

/** Programs this script dispatches itself until mod.ts lists them. */
const ownPrograms: Record<
  string,
  () => Promise<{ main: (a: string[], c: { name: string; program: string }) => Promise<number> }>
> = {
  master: () => import("../daemons/master/master.ts"),
  postfix: () => import("../cmd/postfix.ts"),
};

async function runProgram(name: string, args: string[]): Promise<number> {
  if (!isBuilt(name) && name in ownPrograms) {
    try {
      return await (await ownPrograms[name]()).main(args, { name, program: name });
    } catch (err) {
      if (err instanceof FatalError) return err.exitCode;
      throw err;
    }
  }
  return await run("posthorn", [name, ...args]);
}

/** The launcher line daemons are started with: mod.ts, or this script for the master. */
function launcherLine(): string {
  const target = isBuilt("master") ? `${root}mod.ts` : `${self} --run`;
  return [Deno.execPath(), ...denoFlags, target].join(" ");
}

/** As root: the user daemons run as (created when neither postfix nor posthorn exists). */
function mailOwner(): string | undefined {
  if (Deno.uid() !== 0) return undefined;
  for (const name of ["postfix", "posthorn"]) if (getpwnam(name)) return name;
  console.log("creating the system user 'posthorn' for the daemons (mail_owner)");
  const made = new Deno.Command("useradd", {
    args: ["-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "posthorn"],
  }).outputSync();
  if (!made.success) {
    console.error(
      "start: fatal: cannot create the user 'posthorn'; create a mail_owner user first",
    );
    Deno.exit(1);
  }
  return "posthorn";
}

function mainCf(dir: string, owner: string | undefined): string {
  return [
    "# Posthorn's self-contained instance, created by scripts/start.ts.",
    "# Everything lives in this folder; delete it to start afresh.",
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    "maillog_file = /dev/stdout",
    "inet_interfaces = 127.0.0.1",
    "inet_protocols = ipv4",
    "mydestination = $myhostname, localhost",
    // Aliases and mailboxes inside the instance too (local(8)).
    `alias_maps = hash:${dir}/aliases`,
    `alias_database = hash:${dir}/aliases`,
    `mail_spool_directory = ${dir}/mail`,
    "compatibility_level = 3.6",
    `posthorn_launcher = ${launcherLine()}`,
    ...(owner ? [`mail_owner = ${owner}`] : []),
    "",
  ].join("\n");
}

function masterCf(): string {
  const lines = defaultServices.filter(([program]) => isBuilt(program)).map(([, line]) => line);
  return [
    "# Posthorn's master.cf, created by scripts/start.ts with the services built",
    "# so far (master(5) format). Delete the instance folder to regenerate it.",
    "#",
    "# service type  private unpriv  chroot  wakeup  maxproc command + args",
    ...lines,
    "",
  ].join("\n");
}

/** Creates the instance folder when it does not exist yet; returns whether it did. */
function createInstance(dir: string): boolean {
  try {
    Deno.statSync(`${dir}/main.cf`);
    refreshMasterCf(dir);
    return false;
  } catch {
    // Not there: create it.
  }
  const owner = mailOwner();
  Deno.mkdirSync(dir, { recursive: true });
  // Daemons running as mail_owner read the configuration.
  Deno.chmodSync(dir, 0o755);
  Deno.writeTextFileSync(`${dir}/main.cf`, mainCf(dir, owner));
  writeMasterCf(dir);
  // postmaster and the mailer daemon reach whoever runs the instance.
  Deno.writeTextFileSync(
    `${dir}/aliases`,
    `# newaliases -oA${dir}/aliases after a change
postmaster: ${localUser}
MAILER-DAEMON: postmaster
`,
  );
  // The spool holds one mbox per user; local delivers as root (or as this user).
  Deno.mkdirSync(`${dir}/mail`, { recursive: true });
  Deno.chmodSync(`${dir}/mail`, Deno.uid() === 0 ? 0o1777 : 0o755);
  return true;
}

/** master.cf and a copy that tells, later, whether the administrator edited it. */
function writeMasterCf(dir: string): void {
  const text = masterCf();
  Deno.writeTextFileSync(`${dir}/master.cf`, text);
  Deno.writeTextFileSync(`${dir}/.master.cf.generated`, text);
}

/** An unedited generated master.cf follows the services built since. */
function refreshMasterCf(dir: string): void {
  try {
    const current = Deno.readTextFileSync(`${dir}/master.cf`);
    if (current !== Deno.readTextFileSync(`${dir}/.master.cf.generated`)) return;
    if (current !== masterCf()) writeMasterCf(dir);
  } catch {
    // No copy (or no master.cf): the administrator's file is left alone.
  }
}

function services(dir: string): string[] {
  return Deno.readTextFileSync(`${dir}/master.cf`).split("\n")
    .filter((l) => l.trim() && !l.startsWith("#") && !/^\s/.test(l))
    .map((l) => l.split(/\s+/).slice(0, 2).join("/"));
}

/** Whether every named service is in master.cf. */
function has(list: string[], ...names: string[]): boolean {
  return names.every((name) => list.includes(name));
}

/** Where accepted mail goes, given the services that run. */
function landing(dir: string, list: string[]): string {
  if (!has(list, "qmgr/unix")) {
    return `Accepted mail stays in ${dir}/queue/incoming: no queue manager is built yet.`;
  }
  if (has(list, "local/unix")) {
    return `Mail to ${localUser}@localhost is delivered by local(8) to ${dir}/mail/${localUser}.`;
  }
  return `Mail to you@localhost is deferred (no local delivery agent is built yet) and waits in ` +
    `${dir}/queue/deferred; postcat -c ${dir} -q QUEUE_ID shows it.`;
}

/** What works in this instance, said plainly. */
function banner(dir: string, created: boolean): string {
  const list = services(dir);
  const lines = [
    `Posthorn instance in ${dir} (${created ? "created now" : "existing"})`,
    `  configuration: ${dir}/main.cf, ${dir}/master.cf`,
    `  queue:         ${dir}/queue`,
    `  services:      ${list.length ? list.join(" ") : "none built yet"}`,
  ];
  // What each intake path needs before a message reaches the queue.
  const smtp = has(list, "127.0.0.1:2525/inet", "rewrite/unix", "cleanup/unix");
  const local = isBuilt("sendmail") && has(list, "pickup/unix", "rewrite/unix", "cleanup/unix");
  if (smtp) {
    lines.push("Send a first message over SMTP to 127.0.0.1 port 2525, e.g.:");
    lines.push(`  swaks --server 127.0.0.1:2525 --from me@localhost --to ${localUser}@localhost`);
  }
  if (local) {
    lines.push(smtp ? "Or submit one locally:" : "Submit a first message locally:");
    lines.push(
      `  echo 'Subject: hi' | MAIL_CONFIG=${dir} ${Deno.execPath()} ${
        denoFlags.join(" ")
      } ${root}mod.ts sendmail ${localUser}@localhost`,
    );
  }
  if (smtp || local) {
    lines.push(landing(dir, list));
  } else {
    const missing = ["trivial-rewrite", "cleanup", "smtpd", "pickup"].filter((p) => !isBuilt(p));
    lines.push(
      "No complete mail intake is built yet (missing: " + missing.join(", ") + "): this",
    );
    lines.push(
      "instance runs the master with the services above; mail cannot reach the queue yet.",
    );
  }
  lines.push("Logs follow on standard output. Ctrl-C stops everything.");
  return lines.join("\n");
}

async function start(dir: string): Promise<number> {
  const created = createInstance(dir);
  if (created) {
    const { loadConfig } = await import("../lib/config/mod.ts");
    const { rebuildAliasDatabases } = await import("../maps/aliases.ts");
    await rebuildAliasDatabases(loadConfig({ configDir: dir }));
  }
  console.log(banner(dir, created));
  return await runProgram("postfix", ["-c", dir, "start-fg"]);
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--run") {
    Deno.exit(await runProgram(args[1], args.slice(2)));
  }
  const dir = (args[0] ?? "instance").replace(/\/+$/, "");
  const absolute = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  Deno.exit(await start(absolute));
}
