// End-to-end checks of scripts/install.sh --prefix: the installed tree holds
// the bundle, a link for every program built in, main.cf and master.cf, and
// the queue tree with Postfix's owners and modes (postfix-files); every link
// runs its program by its own name, offline, from an empty DENO_DIR. The
// bundle is built and installed once, into a temporary folder.

import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { projectRoot } from "../run.ts";
import { queueTree } from "../../lib/queue/layout.ts";

const work = Deno.makeTempDirSync({ prefix: "posthorn-install-test-" });
Deno.chmodSync(work, 0o755); // an ordinary user's install below must reach it
const dist = `${work}/dist`;
const prefix = `${work}/root`;
const conf = `${prefix}/etc/postfix`;
globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));

/** What a command printed, and whether it had to be killed. */
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const offline = new Deno.Command("unshare", { args: ["-n", "true"], stderr: "null" })
  .output().then((r) => r.success, () => false);

/** Runs a command with stdin closed, killing it after `seconds`. */
async function exec(
  cmd: string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    seconds?: number;
    noNetwork?: boolean;
    clearEnv?: boolean;
  } = {},
): Promise<Outcome> {
  if (opts.noNetwork && await offline) {
    args = ["-n", cmd, ...args];
    cmd = "unshare";
  }
  const signal = AbortSignal.timeout((opts.seconds ?? 30) * 1000);
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
    clearEnv: opts.clearEnv,
    signal,
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    timedOut: signal.aborted,
  };
}

const myUid = Deno.uid() ?? -1;
const isRoot = myUid === 0;

/** The id (`id -u NAME` or `id -g NAME`) of an account, or undefined. */
async function accountId(flag: "-u" | "-g", name: string): Promise<number | undefined> {
  const r = await exec("id", [flag, name]);
  return r.code === 0 ? Number(r.stdout.trim()) : undefined;
}

/** Options that name accounts which exist here (root installs chown to them). */
async function accountOptions(): Promise<string[]> {
  if (!isRoot || await accountId("-u", "postfix") !== undefined) return [];
  const group = (await exec("id", ["-gn", "nobody"])).stdout.trim();
  return ["--mail-owner", "nobody", "--setgid-group", group];
}

let installed: Promise<Outcome> | undefined;
/** Builds the bundle and installs it into the prefix, the first time only. */
function install(): Promise<Outcome> {
  installed ??= (async () => {
    const b = await exec("bash", [`${projectRoot}scripts/bundle.sh`, "-o", dist], { seconds: 50 });
    if (b.code !== 0) return b;
    const args = ["--prefix", prefix, "--from", dist, ...await accountOptions()];
    return exec("bash", [`${projectRoot}scripts/install.sh`, ...args]);
  })();
  return installed;
}

/** Installs, or fails the test with the diagnostics of the step that failed. */
async function requireInstall(): Promise<void> {
  const r = await install();
  if (r.code !== 0) throw new Error(`building or installing failed:\n${r.stderr}`);
}

/** The program names the installed posthorn lists as built in. */
async function builtPrograms(): Promise<string[]> {
  const r = await exec(`${prefix}/usr/sbin/posthorn`, ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  const at = lines.indexOf("programs built in:");
  const names: string[] = [];
  for (let i = at + 1; at >= 0 && i < lines.length && lines[i].trim() !== ""; i++) {
    names.push(...lines[i].trim().split(/\s+/));
  }
  assert(names.length > 0, "no programs listed:\n" + r.stdout);
  return names;
}

const commands = new Set([
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
]);

/** Where install.sh links a program, as docs/INSTALL.md says. */
function linkPath(name: string): string {
  if (name === "mailq" || name === "newaliases") return `${prefix}/usr/bin/${name}`;
  if (name === "sendmail" || commands.has(name)) return `${prefix}/usr/sbin/${name}`;
  return `${prefix}/usr/libexec/posthorn/${name}`;
}

/** The module a program name runs (mod.ts's aliases). */
const canonical: Record<string, string> = {
  mailq: "sendmail",
  newaliases: "sendmail",
  nqmgr: "qmgr",
  lmtp: "smtp",
  retry: "error",
  proxywrite: "proxymap",
};

Deno.test("install.sh --prefix installs the bundle and links every built program", async () => {
  const r = await install();
  assertEquals(r.code, 0, r.stderr);
  const program = Deno.realPathSync(`${prefix}/usr/lib/posthorn/posthorn`);
  assert(Deno.statSync(`${prefix}/usr/lib/posthorn/posthorn.js`).isFile);
  for (const name of ["posthorn", ...await builtPrograms()]) {
    const path = name === "posthorn" ? `${prefix}/usr/sbin/posthorn` : linkPath(name);
    assert(Deno.lstatSync(path).isSymlink, `${path} is not a symlink`);
    assert(!Deno.readLinkSync(path).startsWith("/"), `${path} is not a relative link`);
    assertEquals(Deno.realPathSync(path), program);
  }
});

Deno.test("every linked program is dispatched by its own name, offline, from an empty DENO_DIR", async () => {
  await requireInstall();
  // No main.cf there: each program stops at once with a diagnostic naming it,
  // and nothing (a master, a daemon) gets to start.
  const nowhere = await Deno.makeTempDir({ dir: work, prefix: "no-config-" });
  const names = await builtPrograms();
  const outcomes = await Promise.all(names.map(async (name) => {
    const denoDir = await Deno.makeTempDir({ dir: work, prefix: "deno-dir-" });
    const env = { MAIL_CONFIG: nowhere, DENO_DIR: denoDir };
    return { name, r: await exec(linkPath(name), [], { env, seconds: 15, noNetwork: true }) };
  }));
  for (const { name, r } of outcomes) {
    assert(!/is unknown|is not built/.test(r.stderr), `${name}: ${r.stderr}`);
    if (!r.timedOut && r.code !== 0) {
      const named = r.stderr.includes(`${name}:`) ||
        r.stderr.includes(`${canonical[name] ?? name}:`);
      assert(named, `${name}'s diagnostic does not name it: ${r.stderr}`);
    }
  }
});

Deno.test("postconf in the installed tree reads the main.cf that install.sh wrote", async () => {
  await requireInstall();
  if (!(await builtPrograms()).includes("postconf")) {
    console.log("skipped: postconf is not built yet");
    return;
  }
  const params = ["queue_directory", "command_directory", "daemon_directory", "data_directory"];
  const r = await exec(`${prefix}/usr/sbin/postconf`, ["-c", conf, "-h", ...params], {
    noNetwork: true,
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim().split("\n"), [
    `${prefix}/var/spool/postfix`,
    `${prefix}/usr/sbin`,
    `${prefix}/usr/libexec/posthorn`,
    `${prefix}/var/lib/postfix`,
  ]);
});

Deno.test("master.cf lists Postfix's standard services, as the reference postconf -M reads it", async () => {
  await requireInstall();
  const text = Deno.readTextFileSync(`${conf}/master.cf`);
  const services = text.split("\n").filter((line) => /^[a-z0-9]/.test(line))
    .map((line) => line.split(/\s+/).slice(0, 2).join("/"));
  for (
    const s of [
      "smtp/inet",
      "pickup/unix",
      "cleanup/unix",
      "qmgr/unix",
      "rewrite/unix",
      "bounce/unix",
      "defer/unix",
      "trace/unix",
      "smtp/unix",
      "local/unix",
      "showq/unix",
    ]
  ) assert(services.includes(s), `${s} missing`);
  try {
    Deno.statSync("/usr/sbin/postconf");
  } catch {
    console.log("skipped the reference check: Postfix's postconf is not installed");
    return;
  }
  const r = await exec("/usr/sbin/postconf", ["-c", conf, "-M"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr, "");
  assertEquals(r.stdout.split("\n").filter(Boolean).length, services.length);
});

Deno.test("the queue tree has the modes and owners the queue code creates", async () => {
  await requireInstall();
  const mainCf = Deno.readTextFileSync(`${conf}/main.cf`);
  const owner = mainCf.match(/^mail_owner = (.*)$/m)![1];
  const ownerUid = isRoot ? (await accountId("-u", owner))! : myUid;
  const ownerGid = isRoot ? (await accountId("-g", owner))! : -1;
  const q = `${prefix}/var/spool/postfix`;
  // Postfix's postfix-files for the rest; lib/queue/layout.ts's table for
  // the queue folders, so that install.sh and the queue code never disagree.
  const spec: [string, number, number, number][] = [
    [q, 0o755, 0, -1],
    [`${prefix}/var/lib/postfix`, 0o700, ownerUid, -1],
    [conf, 0o755, 0, -1],
    [`${prefix}/usr/libexec/posthorn`, 0o755, 0, -1],
    ...queueTree.map((d): [string, number, number, number] => [
      `${q}/${d.name}`,
      d.mode,
      d.mailOwner ? ownerUid : 0,
      ["maildrop", "public"].includes(d.name) ? ownerGid : -1,
    ]),
  ];
  for (const [path, mode, uid, gid] of spec) {
    const st = Deno.statSync(path);
    assertEquals((st.mode! & 0o7777).toString(8), mode.toString(8), `mode of ${path}`);
    assertEquals(st.uid, isRoot ? uid : myUid, `owner of ${path}`);
    if (isRoot && gid >= 0) assertEquals(st.gid, gid, `group of ${path}`);
  }
});

Deno.test("re-running install.sh upgrades in place and keeps main.cf and master.cf", async () => {
  await requireInstall();
  Deno.writeTextFileSync(`${conf}/main.cf`, "# kept by the upgrade\n", { append: true });
  Deno.writeTextFileSync(`${conf}/master.cf`, "# kept too\n", { append: true });
  const mainCf = Deno.readTextFileSync(`${conf}/main.cf`);
  const masterCf = Deno.readTextFileSync(`${conf}/master.cf`);
  const args = ["--prefix", prefix, "--from", dist, ...await accountOptions()];
  const r = await exec("bash", [`${projectRoot}scripts/install.sh`, ...args]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(Deno.readTextFileSync(`${conf}/main.cf`), mainCf);
  assertEquals(Deno.readTextFileSync(`${conf}/master.cf`), masterCf);
  const help = await exec(`${prefix}/usr/sbin/posthorn`, ["--help"]);
  assertEquals(help.code, 0, help.stderr);
});

Deno.test("install.sh changes nothing when a program path holds a file that is not Posthorn's", async () => {
  await requireInstall();
  const other = `${work}/occupied`;
  Deno.mkdirSync(`${other}/usr/sbin`, { recursive: true });
  Deno.writeTextFileSync(`${other}/usr/sbin/posthorn`, "#!/bin/sh\n");
  const r = await exec("bash", [
    `${projectRoot}scripts/install.sh`,
    "--prefix",
    other,
    "--from",
    dist,
  ]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `not Posthorn's: ${other}/usr/sbin/posthorn`);
  assertStringIncludes(r.stderr, "use --force");
  for (const path of ["usr/lib/posthorn", "etc/postfix", "var/spool/postfix"]) {
    assert(!exists(`${other}/${path}`), `${path} was made`);
  }
});

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs install.sh as the ordinary user nobody (root only, with setpriv). */
async function installAsNobody(args: string[]): Promise<Outcome | undefined> {
  if (!isRoot || (await exec("setpriv", ["--version"]).catch(() => undefined))?.code !== 0) {
    return undefined;
  }
  const home = await Deno.makeTempDir({ dir: work, prefix: "nobody-" });
  await exec("chown", ["nobody", home]);
  return exec("setpriv", [
    "--reuid=nobody",
    "--regid=" + (await accountId("-g", "nobody")),
    "--clear-groups",
    "env",
    `HOME=${home}`,
    `DENO_DIR=${home}/deno`,
    "bash",
    `${projectRoot}scripts/install.sh`,
    ...args.map((a) => a.replace("HOME", home)),
  ]);
}

Deno.test("as an ordinary user, --prefix installs a tree that user owns, without chown", async () => {
  await requireInstall();
  const r = await installAsNobody(["--prefix", "HOME/tree", "--from", dist]);
  if (!r) {
    console.log("skipped: needs root and setpriv to act as an ordinary user");
    return;
  }
  assertEquals(r.code, 0, r.stderr);
  const tree = r.stdout.match(/config in (\S+)\/etc\/postfix/)![1];
  const nobody = (await accountId("-u", "nobody"))!;
  for (
    const path of ["var/spool/postfix/maildrop", "var/spool/postfix/active", "etc/postfix/main.cf"]
  ) {
    assertEquals(Deno.statSync(`${tree}/${path}`).uid, nobody, path);
  }
  assertStringIncludes(
    Deno.readTextFileSync(`${tree}/etc/postfix/main.cf`),
    "\nmail_owner = nobody\n",
  );
});

Deno.test("install.sh refuses to install into the system for an ordinary user", async () => {
  await requireInstall();
  const r = isRoot
    ? await installAsNobody(["--from", dist])
    : await exec("bash", [`${projectRoot}scripts/install.sh`, "--from", dist]);
  if (!r) {
    console.log("skipped: needs setpriv to act as an ordinary user");
    return;
  }
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "installing into the system needs root; use --prefix DIR");
});

Deno.test("a linked program runs with an empty environment, as the master starts daemons", async () => {
  await requireInstall();
  // No PATH, no HOME, no DENO_DIR: the launcher runs the deno install.sh found.
  const r = await exec(`${prefix}/usr/sbin/posthorn`, ["--help"], { clearEnv: true });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "programs built in:");
});

Deno.test("install.sh installs a compiled binary in place of the bundle", async () => {
  await requireInstall();
  // A stand-in for dist/bin/posthorn (no denort here to build the real one):
  // an executable that runs the bundle under the name it was invoked by.
  const bin = `${work}/dist-bin`;
  Deno.mkdirSync(`${bin}/bin`, { recursive: true });
  const deno = Deno.execPath();
  Deno.writeTextFileSync(
    `${bin}/bin/posthorn`,
    `#!/usr/bin/env bash\nexec -a "\${0##*/}" ${deno} run -A --no-config ${dist}/posthorn.js "$@"\n`,
    { mode: 0o755 },
  );
  const other = `${work}/upgraded`;
  const options = await accountOptions();
  const script = `${projectRoot}scripts/install.sh`;
  const first = await exec("bash", [script, "--prefix", other, "--from", dist, ...options]);
  assertEquals(first.code, 0, first.stderr);
  const r = await exec("bash", [script, "--prefix", other, "--from", bin, ...options]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "installed the binary");
  assertEquals(
    Deno.readTextFileSync(`${other}/usr/lib/posthorn/posthorn`),
    Deno.readTextFileSync(`${bin}/bin/posthorn`),
  );
  assert(!exists(`${other}/usr/lib/posthorn/posthorn.js`), "posthorn.js was left behind");
  const probe = `${other}/usr/sbin/posthorn-argv0-probe`;
  Deno.symlinkSync("posthorn", probe);
  const p = await exec(probe, []);
  assertStringIncludes(p.stderr, 'program "posthorn-argv0-probe" is unknown');
});

/** Processes running a posthorn.js under `tree`: [pid, argv[0]] pairs. */
function processesUsing(tree: string): [number, string][] {
  const found: [number, string][] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      const bundle = (arg: string) => arg.startsWith(tree) && arg.endsWith("/posthorn.js");
      if (argv.some(bundle)) found.push([Number(entry.name), argv[0]]);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

Deno.test("the installed master starts a daemon from daemon_directory under the daemon's name", async () => {
  await requireInstall();
  const built = await builtPrograms();
  const needed = ["postfix", "master", "pickup", "postkick"];
  if (!needed.every((name) => built.includes(name))) {
    console.log(`skipped: needs ${needed.join(", ")} built`);
    return;
  }
  const tree = `${work}/instance`;
  const args = ["--prefix", tree, "--from", dist, ...await accountOptions()];
  const r = await exec("bash", [`${projectRoot}scripts/install.sh`, ...args]);
  assertEquals(r.code, 0, r.stderr);
  const cf = `${tree}/etc/postfix`;
  // One service and no network listener: pickup, started when kicked.
  Deno.writeTextFileSync(`${cf}/master.cf`, "pickup unix n - n 60 1 pickup\n");
  Deno.writeTextFileSync(`${cf}/main.cf`, `maillog_file = ${tree}/maillog\n`, { append: true });
  // Daemons must run the installed program, not a source launcher.
  const postfix = (cmd: string) =>
    exec("env", ["-u", "POSTHORN_LAUNCHER", `${tree}/usr/sbin/postfix`, "-c", cf, cmd], {
      seconds: 20,
    });
  try {
    const start = await postfix("start");
    assertEquals(start.code, 0, start.stderr);
    let pickup: [number, string] | undefined;
    for (let i = 0; i < 100 && !pickup; i++) {
      await exec(`${tree}/usr/sbin/postkick`, ["-c", cf, "public", "pickup", "W"]);
      pickup = processesUsing(tree).find(([, argv0]) => argv0 === "pickup");
      if (!pickup) await new Promise((ok) => setTimeout(ok, 100));
    }
    const log = exists(`${tree}/maillog`) ? Deno.readTextFileSync(`${tree}/maillog`) : "";
    assert(pickup, `no pickup process from ${tree}; mail log:\n${log}`);
    assert(processesUsing(tree).some(([, argv0]) => argv0 === "master"), "no master");
  } finally {
    await postfix("stop");
    for (let i = 0; i < 50 && processesUsing(tree).length; i++) {
      await new Promise((ok) => setTimeout(ok, 100));
    }
    for (const [pid] of processesUsing(tree)) Deno.kill(pid, "SIGKILL");
  }
});
