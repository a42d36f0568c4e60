// End-to-end checks of the shipped artefacts: the bundle that
// scripts/bundle.sh makes (posthorn.js plus its launcher) runs offline from an
// empty DENO_DIR, keeps the name it is invoked by through chains of symlinks,
// and behaves as the source does; scripts/compile.sh fails clearly when it has
// no runtime base. The bundle is built once, into a temporary folder.

import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { projectRoot, runProgram } from "../run.ts";

const work = Deno.makeTempDirSync({ prefix: "posthorn-bundle-test-" });
const dist = `${work}/dist`;
globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));

/** What a command printed, and whether it had to be killed. */
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

// `unshare -n` gives a child no network at all, where the system allows it.
const offline = new Deno.Command("unshare", { args: ["-n", "true"], stderr: "null" })
  .output().then((r) => r.success, () => false);

/** Runs a command with stdin closed, killing it after `seconds`. */
async function exec(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; seconds?: number; noNetwork?: boolean } = {},
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

let built: Promise<Outcome> | undefined;
/** Builds the bundle into the temporary dist/ the first time it is asked. */
function buildBundle(): Promise<Outcome> {
  built ??= exec("bash", [`${projectRoot}scripts/bundle.sh`, "-o", dist], { seconds: 50 });
  return built;
}

/** Builds the bundle, or fails the test with bundle.sh's diagnostics. */
async function requireBundle(): Promise<void> {
  const r = await buildBundle();
  if (r.code !== 0) throw new Error(`scripts/bundle.sh failed:\n${r.stderr}`);
}

/** Runs the launcher (or a link to it) as a stranger would: empty DENO_DIR, no network. */
async function runBundled(path: string, args: string[], env: Record<string, string> = {}) {
  const denoDir = await Deno.makeTempDir({ dir: work, prefix: "deno-dir-" });
  return exec(path, args, { env: { DENO_DIR: denoDir, ...env }, seconds: 20, noNetwork: true });
}

/** The program names `posthorn --help` lists as built in. */
function builtPrograms(help: string): string[] {
  const lines = help.split("\n");
  const at = lines.indexOf("programs built in:");
  const names: string[] = [];
  for (let i = at + 1; at >= 0 && i < lines.length && lines[i].trim() !== ""; i++) {
    names.push(...lines[i].trim().split(/\s+/));
  }
  return names;
}

Deno.test("deno task bundle makes posthorn.js and an executable launcher", async () => {
  const r = await buildBundle();
  assertEquals(r.code, 0, r.stderr);
  assert(Deno.statSync(`${dist}/posthorn.js`).size > 0);
  assertEquals(Deno.statSync(`${dist}/posthorn`).mode! & 0o111, 0o111);
});

Deno.test("the bundle imports nothing at run time and loads each program lazily", async () => {
  await requireBundle();
  const text = Deno.readTextFileSync(`${dist}/posthorn.js`);
  const imports = text.match(/import\((["'])(\.{1,2}\/|file:|https?:|npm:|jsr:)[^"']*\1\)/g);
  assertEquals(imports, null);
  // Each of mod.ts's program imports became an initialiser that runs only
  // when its loader is called (with top-level await: init_x().then(...)).
  const wanted = Deno.readTextFileSync(`${projectRoot}mod.ts`).match(/=> import\("\.\//g) ?? [];
  const lazy = text.match(
    /\(\) => (Promise\.resolve\(\)\.then\(\(\) => \(init_[\w$]+\(\)|init_[\w$]+\(\)\.then\()/g,
  ) ?? [];
  assertEquals(lazy.length, wanted.length);
  assert(wanted.length > 0);
});

Deno.test("posthorn --help runs from the bundle with an empty DENO_DIR and no network", async () => {
  await requireBundle();
  const r = await runBundled(`${dist}/posthorn`, ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const names = builtPrograms(r.stdout);
  assert(names.length > 0, "no programs listed:\n" + r.stdout);
  const source = await runProgram("--help", []);
  assertEquals(r.stdout, source.stdout);
});

Deno.test("a link through a chain of relative symlinks keeps its name as argv[0]", async () => {
  await requireBundle();
  const links = await Deno.makeTempDir({ dir: work, prefix: "links-" });
  Deno.symlinkSync("../dist/posthorn", `${links}/first`);
  Deno.symlinkSync("first", `${links}/posthorn-argv0-probe`);
  const r = await runBundled(`${links}/posthorn-argv0-probe`, []);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, 'program "posthorn-argv0-probe" is unknown');
});

// Invocations that only read: each built one must give the same result from
// the bundle, through a link named after the program, as from the source.
const harmless: Record<string, (conf: string) => string[]> = {
  postconf: (conf) => ["-c", conf, "-h", "mail_name", "mail_version", "queue_directory"],
  postmap: (conf) => ["-c", conf, "-q", "key", "inline:{key=value}"],
  postalias: (conf) => ["-c", conf, "-q", "key", "inline:{key=value}"],
};

Deno.test("a built program runs by its link name from the bundle as from the source", async () => {
  await requireBundle();
  const help = await runBundled(`${dist}/posthorn`, ["--help"]);
  const names = builtPrograms(help.stdout).filter((name) => name in harmless);
  assert(names.length > 0, "none of " + Object.keys(harmless).join(", ") + " is built");
  const conf = await Deno.makeTempDir({ dir: work, prefix: "conf-" });
  Deno.writeTextFileSync(`${conf}/main.cf`, `queue_directory = ${work}/queue\n`);
  const links = await Deno.makeTempDir({ dir: work, prefix: "bin-" });
  for (const name of names) {
    Deno.symlinkSync(`${dist}/posthorn`, `${links}/${name}`);
    const bundled = await runBundled(`${links}/${name}`, harmless[name](conf));
    const source = await runProgram(name, harmless[name](conf));
    assertEquals(
      { code: bundled.code, stdout: bundled.stdout, stderr: bundled.stderr },
      { code: source.code, stdout: source.stdout, stderr: source.stderr },
      `${name} differs`,
    );
    assert(!/is unknown|is not built/.test(bundled.stderr), bundled.stderr);
  }
});

Deno.test("compile.sh without a runtime base fails with a clear message", async () => {
  // With no network and an empty DENO_DIR no denort can be had; where the
  // system cannot take the network away and a download works, the build must
  // then give a working binary instead.
  const denoDir = await Deno.makeTempDir({ dir: work, prefix: "deno-dir-" });
  const out = `${work}/compiled`;
  const env: Record<string, string> = { DENO_DIR: denoDir, DENORT_BIN: "" };
  const r = await exec("bash", [`${projectRoot}scripts/compile.sh`, "-o", out], {
    env,
    seconds: 50,
    noNetwork: true,
  });
  assert(!r.timedOut, "compile.sh did not finish in time");
  if (r.code === 0) {
    const help = await exec(`${out}/bin/posthorn`, ["--help"]);
    assertStringIncludes(help.stdout, "programs built in:");
    return;
  }
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "compile.sh: fatal: cannot get Deno's runtime base (denort");
  assertStringIncludes(r.stderr, "Set DENORT_BIN");
  assertStringIncludes(r.stderr, "deno task bundle");
});

Deno.test("compile.sh refuses a DENORT_BIN that is not an executable file", async () => {
  const r = await exec("bash", [`${projectRoot}scripts/compile.sh`, "-o", `${work}/c2`], {
    env: { DENORT_BIN: `${work}/no-such-denort` },
    seconds: 20,
  });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `DENORT_BIN=${work}/no-such-denort is not an executable file`);
});
