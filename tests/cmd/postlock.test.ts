// postlock: each case runs Posthorn's postlock and, where installed, the
// reference's, and compares exit status and diagnostics (the program name
// prefix aside: the reference names itself by its full path).

import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";

const reference = "/usr/sbin/postlock";
const haveReference = (() => {
  try {
    return Deno.statSync(reference).isFile;
  } catch {
    return false;
  }
})();

interface Outcome {
  code: number;
  stderr: string;
  stdout: string;
}

/** A folder for one case: a config dir with one lock attempt, and the mailbox path. */
function setup(
  mainCf = "deliver_lock_attempts = 1\n",
): { dir: string; config: string; box: string } {
  const dir = Deno.makeTempDirSync({ prefix: "postlock-test-" });
  const config = `${dir}/config`;
  Deno.mkdirSync(config);
  Deno.writeTextFileSync(`${config}/main.cf`, mainCf);
  return { dir, config, box: `${dir}/mbox` };
}

function normalize(text: string, dir: string): string {
  return text.replaceAll(`${reference}:`, "postlock:").replaceAll(reference, "postlock")
    .replaceAll(dir, "DIR");
}

async function ours(
  args: string[],
  dir: string,
  env: Record<string, string> = {},
): Promise<Outcome> {
  const r = await runProgram("postlock", args, { env });
  return { code: r.code, stderr: normalize(r.stderr, dir), stdout: r.stdout };
}

async function theirs(
  args: string[],
  dir: string,
  env: Record<string, string> = {},
): Promise<Outcome> {
  const r = await new Deno.Command(reference, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    stderr: normalize(dec.decode(r.stderr), dir),
    stdout: dec.decode(r.stdout),
  };
}

/** Runs both (the reference only when installed) after `prepare`, and returns Posthorn's outcome. */
async function compare(
  args: (s: ReturnType<typeof setup>) => string[],
  prepare: (s: ReturnType<typeof setup>) => void = () => {},
): Promise<Outcome> {
  const a = setup();
  prepare(a);
  const b = haveReference ? setup() : undefined;
  if (b) prepare(b);
  // Both run at once: each has its own folder.
  const [mine, ref] = await Promise.all([
    ours(args(a), a.dir),
    b ? theirs(args(b), b.dir) : Promise.resolve(undefined),
  ]);
  Deno.removeSync(a.dir, { recursive: true });
  if (b) Deno.removeSync(b.dir, { recursive: true });
  if (ref) assertEquals(mine, ref);
  return mine;
}

Deno.test("postlock without a command prints the usage and exits 75", async () => {
  const r = await compare((s) => ["-c", s.config, s.box]);
  assertEquals(r.code, 75);
  assertEquals(
    r.stderr,
    "postlock: fatal: usage: postlock [-c config_dir] [-l lock_style] [-v] folder command...\n",
  );
});

Deno.test("postlock with a bad option names it, then the usage", async () => {
  const r = await compare((s) => ["-c", s.config, "-x", s.box, "true"]);
  assertEquals(r.code, 75);
  assertStringIncludes(r.stderr, "postlock: invalid option -- 'x'\n");
});

Deno.test("postlock rejects an unknown lock style as the reference words it", async () => {
  const r = await compare((s) => ["-c", s.config, "-l", "foo", s.box, "true"]);
  assertEquals(r, {
    code: 75,
    stdout: "",
    stderr: 'postlock: fatal: unknown mailbox_delivery_lock value "foo" in "foo"\n',
  });
});

Deno.test("postlock exits with the command's status and creates the folder with mode 0600", async () => {
  const s = setup();
  const r = await ours(["-c", s.config, s.box, "sh", "-c", "echo hi; exit 3"], s.dir);
  assertEquals(r, { code: 3, stdout: "hi\n", stderr: "" });
  assertEquals(Deno.statSync(s.box).mode! & 0o777, 0o600);
  assertEquals([...Deno.readDirSync(s.dir)].map((e) => e.name).sort(), ["config", "mbox"]);
  Deno.removeSync(s.dir, { recursive: true });
  await compare((s) => ["-c", s.config, s.box, "sh", "-c", "echo hi; exit 3"]);
});

Deno.test("postlock exits 1 when the command is killed or cannot be run", async () => {
  const killed = await compare((s) => ["-c", s.config, s.box, "sh", "-c", "kill -TERM $$"]);
  assertEquals(killed.code, 1);
  const missing = await compare((s) => ["-c", s.config, s.box, `${s.dir}/no-such-command`]);
  assertEquals(missing, {
    code: 1,
    stdout: "",
    stderr: "postlock: fatal: execvp DIR/no-such-command: No such file or directory\n",
  });
});

Deno.test("postlock holds the dotlock and the kernel lock while the command runs", async () => {
  const s = setup();
  // flock -n fails while postlock holds the flock lock; the dotlock exists.
  const check = `test -e ${s.box}.lock && ! flock -n ${s.box} true && echo locked`;
  const r = await ours(["-c", s.config, "-l", "flock, dotlock", s.box, "sh", "-c", check], s.dir);
  assertEquals(r, { code: 0, stdout: "locked\n", stderr: "" });
  assert(!exists(`${s.box}.lock`), "the dotlock is gone afterwards");
  Deno.removeSync(s.dir, { recursive: true });
});

Deno.test("postlock fails with 75 while another holder keeps the lock", async () => {
  const dot = await compare(
    (s) => ["-c", s.config, "-l", "dotlock", s.box, "true"],
    (s) => Deno.writeTextFileSync(`${s.box}.lock`, ""),
  );
  assertEquals(dot, {
    code: 75,
    stdout: "",
    stderr:
      "postlock: fatal: open file DIR/mbox: unable to create lock file DIR/mbox.lock: File exists\n",
  });
  const s = setup();
  Deno.writeTextFileSync(s.box, "");
  const holder = new Deno.Command("flock", { args: ["-x", s.box, "sleep", "30"] }).spawn();
  await waitLocked(s.box);
  const r = await ours(["-c", s.config, "-l", "flock", s.box, "true"], s.dir);
  holder.kill("SIGTERM");
  await holder.status;
  assertEquals(r, {
    code: 75,
    stdout: "",
    stderr:
      "postlock: fatal: open file DIR/mbox: unable to lock for exclusive access: Resource temporarily unavailable\n",
  });
  Deno.removeSync(s.dir, { recursive: true });
});

Deno.test("postlock reports a folder it cannot open as the reference does", async () => {
  const missingDir = await compare((s) => ["-c", s.config, `${s.dir}/nodir/mbox`, "true"]);
  assertEquals(
    missingDir.stderr,
    "postlock: fatal: open file DIR/nodir/mbox: unable to create lock file DIR/nodir/mbox.lock: No such file or directory\n",
  );
  const directory = await compare((s) => ["-c", s.config, s.config, "true"]);
  assertEquals(directory, {
    code: 75,
    stdout: "",
    stderr: "postlock: fatal: open file DIR/config: cannot open file: Is a directory\n",
  });
});

Deno.test("postlock without main.cf fails as the reference does", async () => {
  const r = await compare((s) => ["-c", `${s.dir}/none`, s.box, "true"]);
  assertEquals(r, {
    code: 75,
    stdout: "",
    stderr: "postlock: fatal: open DIR/none/main.cf: No such file or directory\n",
  });
});

async function waitLocked(path: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const probe = await new Deno.Command("flock", { args: ["-n", path, "true"] }).output();
    if (!probe.success) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the lock holder did not start");
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
