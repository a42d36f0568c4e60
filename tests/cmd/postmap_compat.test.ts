// The same source files built and queried with Posthorn and with the
// reference Postfix: postmap -q, postmap -s and postalias -q must agree.
// Without the reference (/usr/sbin/postmap), Posthorn is checked against
// golden files made from it; UPDATE_GOLDEN=1 rewrites those from the
// reference.

import { DatabaseSync } from "node:sqlite";
import { assertEquals } from "../assert.ts";
import { projectRoot, runProgram } from "../run.ts";

const golden = `${projectRoot}tests/golden/maps/`;
const inputs = [
  "table.in",
  "keys.txt",
  "aliases.in",
  "alias-keys.txt",
  "checks.regexp",
  "checks.pcre",
  "clients.cidr",
  "regexp-keys.txt",
  "cidr-keys.txt",
  "mime.msg",
  "all.regexp",
  "sqlite-s.cf",
  "sqlite-parts.cf",
  "sqlite-keys.txt",
];

function referenceInstalled(): boolean {
  try {
    return Deno.statSync("/usr/sbin/postmap").isFile && Deno.statSync("/usr/sbin/postalias").isFile;
  } catch {
    return false;
  }
}

/** One comparison: the commands to run in order; the last one's output is compared. */
interface Case {
  name: string;
  steps: { program: "postmap" | "postalias"; args: string[]; stdin?: string }[];
  /** -s output comes in each implementation's own order: compare it sorted. */
  sort?: boolean;
}

const keys = (file: string) => Deno.readTextFileSync(golden + file);

const cases: Case[] = [
  { name: "hash-build", steps: [{ program: "postmap", args: ["table.in"] }] },
  {
    name: "hash-q",
    steps: [
      { program: "postmap", args: ["table.in"] },
      { program: "postmap", args: ["-q", "-", "table.in"], stdin: keys("keys.txt") },
    ],
  },
  {
    name: "hash-s",
    sort: true,
    steps: [{ program: "postmap", args: ["table.in"] }, {
      program: "postmap",
      args: ["-s", "table.in"],
    }],
  },
  {
    name: "hash-f-q",
    steps: [
      { program: "postmap", args: ["-f", "table.in"] },
      { program: "postmap", args: ["-f", "-q", "-", "table.in"], stdin: keys("keys.txt") },
    ],
  },
  {
    name: "cdb-q",
    steps: [
      { program: "postmap", args: ["cdb:table.in"] },
      { program: "postmap", args: ["-q", "-", "cdb:table.in"], stdin: keys("keys.txt") },
    ],
  },
  {
    name: "texthash-q",
    steps: [{
      program: "postmap",
      args: ["-q", "-", "texthash:table.in"],
      stdin: keys("keys.txt"),
    }],
  },
  {
    name: "regexp-q",
    steps: [{
      program: "postmap",
      args: ["-q", "-", "regexp:checks.regexp"],
      stdin: keys("regexp-keys.txt"),
    }],
  },
  {
    name: "pcre-q",
    steps: [{
      program: "postmap",
      args: ["-q", "-", "pcre:checks.pcre"],
      stdin: keys("regexp-keys.txt"),
    }],
  },
  {
    name: "cidr-q",
    steps: [{
      program: "postmap",
      args: ["-q", "-", "cidr:clients.cidr"],
      stdin: keys("cidr-keys.txt"),
    }],
  },
  ...["-h", "-b", "-h -m", "-b -m"].map((flags): Case => ({
    name: `message${flags.replaceAll(" ", "")}`,
    steps: [{
      program: "postmap",
      args: [...flags.split(" "), "-q", "-", "regexp:all.regexp"],
      stdin: keys("mime.msg"),
    }],
  })),
  ...["sqlite-s.cf", "sqlite-parts.cf"].map((cf): Case => ({
    name: cf.replace(".cf", "-q"),
    steps: [{
      program: "postmap",
      args: ["-q", "-", `sqlite:./${cf}`],
      stdin: keys("sqlite-keys.txt"),
    }],
  })),
  { name: "postalias-build", steps: [{ program: "postalias", args: ["aliases.in"] }] },
  {
    name: "postalias-q",
    steps: [
      { program: "postalias", args: ["aliases.in"] },
      { program: "postalias", args: ["-q", "-", "aliases.in"], stdin: keys("alias-keys.txt") },
    ],
  },
  {
    name: "postalias-s",
    sort: true,
    steps: [{ program: "postalias", args: ["aliases.in"] }, {
      program: "postalias",
      args: ["-s", "aliases.in"],
    }],
  },
];

/** A working directory with the inputs and an aged main.cf (Postfix waits for a new one to age). */
function workdir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-compat-" });
  Deno.writeTextFileSync(`${dir}/main.cf`, "myhostname = mx.example.com\n");
  const old = new Date(Date.now() - 3600_000);
  Deno.utimeSync(`${dir}/main.cf`, old, old);
  for (const f of inputs) Deno.copyFileSync(golden + f, `${dir}/${f}`);
  const db = new DatabaseSync(`${dir}/maps.sqlite`);
  db.exec(Deno.readTextFileSync(`${golden}sqlite.sql`));
  db.close();
  return dir;
}

/** Removes what legitimately differs: time stamps and regex engine error texts. */
function normalize(text: string, sort: boolean, dedupe = false): string {
  let lines = text.split("\n").filter((l) => l !== "" && !l.startsWith("YP_LAST_MODIFIED"));
  lines = lines.map((l) =>
    l.replace(/(map \S+, line \d+: )(Unmatched|error in regex).*$/, "$1REGEX-ERROR")
  );
  if (sort) lines.sort();
  // The reference reopens a texthash table per -q - key, repeating its warnings.
  if (dedupe) lines = lines.filter((l, i) => lines.indexOf(l) === i);
  return lines.join("\n") + "\n";
}

async function runSteps(
  c: Case,
  reference: boolean,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const dir = workdir();
  let out = { stdout: "", stderr: "", code: 0 };
  let stderr = "";
  for (const step of c.steps) {
    const args = ["-c", dir, ...step.args];
    if (reference) {
      const child = new Deno.Command(`/usr/sbin/${step.program}`, {
        args,
        cwd: dir,
        stdin: step.stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (step.stdin !== undefined) {
        const w = child.stdin.getWriter();
        await w.write(new TextEncoder().encode(step.stdin));
        await w.close();
      }
      const o = await child.output();
      out = {
        stdout: new TextDecoder().decode(o.stdout),
        stderr: new TextDecoder().decode(o.stderr),
        code: o.code,
      };
    } else {
      out = await runProgram(step.program, args, { cwd: dir, stdin: step.stdin });
    }
    stderr += out.stderr;
  }
  Deno.removeSync(dir, { recursive: true });
  return {
    stdout: normalize(out.stdout, !!c.sort),
    stderr: normalize(stderr, false, true),
    code: out.code,
  };
}

const haveReference = referenceInstalled();
if (!haveReference) {
  console.log(
    "postmap compatibility: reference /usr/sbin/postmap absent; checking against golden files",
  );
}

for (const c of cases) {
  Deno.test(`postmap compatibility: ${c.name} matches the reference`, async () => {
    const ours = await runSteps(c, false);
    let expected: { stdout: string; stderr: string; code: number };
    const file = `${golden}${c.name}`;
    if (haveReference) {
      expected = await runSteps(c, true);
      if (Deno.env.get("UPDATE_GOLDEN")) {
        Deno.writeTextFileSync(`${file}.stdout.ref`, expected.stdout);
        Deno.writeTextFileSync(`${file}.stderr.ref`, expected.stderr);
        Deno.writeTextFileSync(`${file}.code.ref`, `${expected.code}\n`);
      }
    } else {
      expected = {
        stdout: Deno.readTextFileSync(`${file}.stdout.ref`),
        stderr: Deno.readTextFileSync(`${file}.stderr.ref`),
        code: Number(Deno.readTextFileSync(`${file}.code.ref`).trim()),
      };
    }
    assertEquals(ours, expected);
  });
}
