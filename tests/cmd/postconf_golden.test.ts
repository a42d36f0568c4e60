// postconf(1) compatibility: each case in tests/golden/postconf/cases.json runs
// `postconf -c . ARGS` in a copy of a fixture (main.cf, master.cf) and is
// compared with the reference Postfix 3.7's output kept in
// tests/golden/postconf/out/ (standard output exactly, standard error as a set
// of lines since the reference prints "unused parameter" warnings in hash
// order, the exit status, and the edited files). Where the reference is
// installed it runs too, so a stale golden file shows up; UPDATE_GOLDEN=1
// rewrites the golden files from it.
//
// Masked on both sides: process_id (differs per run), mynetworks (the host's
// interfaces), mail_name and max_use (Posthorn's two intended differences:
// docs/COMPATIBILITY.md).

import { assertEquals } from "../assert.ts";
import { projectRoot, runProgram, type RunResult } from "../run.ts";

const golden = `${projectRoot}tests/golden/postconf/`;
const reference = "/usr/sbin/postconf";
const haveReference = (() => {
  try {
    return Deno.statSync(reference).isFile;
  } catch {
    return false;
  }
})();
const update = Deno.env.get("UPDATE_GOLDEN") === "1";

interface Case {
  name: string;
  fixture: string;
  args: string[];
  files?: string[];
}

const cases: Case[] = JSON.parse(Deno.readTextFileSync(`${golden}cases.json`));

function normalize(text: string): string {
  return text
    .replace(/^(process_id|mynetworks|mail_name|max_use) = .*$/gm, "$1 = <masked>")
    .replace(/^(process_id|mynetworks|mail_name|max_use)$/gm, "$1");
}

function sortedLines(text: string): string {
  return text.split("\n").filter(Boolean).sort().join("\n");
}

function copyFixture(fixture: string): string {
  const dir = Deno.makeTempDirSync({ prefix: "postconf-golden-" });
  for (const entry of Deno.readDirSync(`${golden}fixtures/${fixture}`)) {
    Deno.copyFileSync(`${golden}fixtures/${fixture}/${entry.name}`, `${dir}/${entry.name}`);
    // The reference waits a second or two before reading a file modified
    // within the last seconds; fixtures are old files.
    Deno.utimeSync(`${dir}/${entry.name}`, 1e9, 1e9);
  }
  return dir;
}

async function runReference(args: string[], cwd: string): Promise<RunResult> {
  // exec -a: the reference names itself after argv[0], as Posthorn does.
  const out = await new Deno.Command("bash", {
    args: ["-c", `exec -a postconf ${reference} "$@"`, "postconf", ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { LANG: "C" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function readOr(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** The golden record of one run: outputs, status and edited files. */
function record(result: RunResult, dir: string, files: string[] = []): Record<string, string> {
  const rec: Record<string, string> = {
    stdout: normalize(result.stdout),
    stderr: sortedLines(result.stderr),
    code: String(result.code),
  };
  for (const f of files) rec[f] = readOr(`${dir}/${f}`) ?? "<missing>";
  return rec;
}

function loadGolden(name: string): Record<string, string> {
  return JSON.parse(Deno.readTextFileSync(`${golden}out/${name}.json`));
}

for (const c of cases) {
  Deno.test(`postconf ${c.args.join(" ") || "(no arguments)"} matches the reference (${c.name})`, async () => {
    const args = ["-c", ".", ...c.args];
    if (haveReference && (update || !readOr(`${golden}out/${c.name}.json`))) {
      const dir = copyFixture(c.fixture);
      const rec = record(await runReference(args, dir), dir, c.files);
      Deno.mkdirSync(`${golden}out`, { recursive: true });
      Deno.writeTextFileSync(`${golden}out/${c.name}.json`, JSON.stringify(rec, null, 1) + "\n");
      Deno.removeSync(dir, { recursive: true });
    }
    const expected = loadGolden(c.name);
    const dir = copyFixture(c.fixture);
    try {
      const actual = record(await runProgram("postconf", args, { cwd: dir }), dir, c.files);
      assertEquals(actual, expected);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
    if (haveReference && !update) {
      const refDir = copyFixture(c.fixture);
      try {
        const again = record(await runReference(args, refDir), refDir, c.files);
        assertEquals(again, expected, "the reference's output changed: rerun with UPDATE_GOLDEN=1");
      } finally {
        Deno.removeSync(refDir, { recursive: true });
      }
    }
  });
}
