// postcat against the reference: queue files written by Postfix (maildrop
// files from its postdrop, hold and incoming files from its cleanup) and a
// crafted file with pointer and padding records, each printed with every
// option set; the output must match the reference's byte for byte.

import { assertEquals } from "../assert.ts";
import { projectRoot } from "../run.ts";

const golden = `${projectRoot}tests/golden/queue/`;

interface Case {
  opts: string[];
  file: string;
  expected: Uint8Array;
  exit: number;
}

/** Splits a *.postcat.ref file into its `### postcat OPTS FILE` sections. */
function loadCases(refName: string): Case[] {
  const data = Deno.readFileSync(golden + refName);
  const text = binary(data);
  const cases: Case[] = [];
  const re = /^### postcat (\S+) (\S+)\n/gm;
  const heads = [...text.matchAll(re)];
  heads.forEach((m, i) => {
    const from = m.index! + m[0].length;
    const to = i + 1 < heads.length ? heads[i + 1].index! : text.length;
    let body = text.slice(from, to);
    let exit = 0;
    const ex = /### exit (\d+)\n$/.exec(body);
    if (ex) {
      exit = Number(ex[1]);
      body = body.slice(0, ex.index);
    }
    const bytes = Uint8Array.from(body, (c) => c.charCodeAt(0));
    cases.push({ opts: m[1] === "none" ? [] : [m[1]], file: m[2], expected: bytes, exit });
  });
  return cases;
}

async function runPostcat(
  args: string[],
  configDir: string,
): Promise<{ code: number; out: Uint8Array }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-ffi",
      "--unstable-net",
      `${projectRoot}mod.ts`,
      "postcat",
      ...args,
    ],
    cwd: golden,
    env: { TZ: "UTC", MAIL_CONFIG: configDir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  return { code: out.code, out: out.stdout };
}

/** Bytes as a string of code points 0-255 (TextDecoder's "latin1" is windows-1252). */
function binary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

const refs = [...Deno.readDirSync(golden)].map((e) => e.name).filter((n) =>
  n.endsWith(".postcat.ref")
).sort();

for (const ref of refs) {
  Deno.test(`postcat prints ${ref.replace(".postcat.ref", "")} as the reference does, every option set`, async () => {
    const dir = Deno.makeTempDirSync();
    Deno.writeTextFileSync(`${dir}/main.cf`, `queue_directory = ${dir}/queue\n`);
    const cases = loadCases(ref);
    const results = await Promise.all(cases.map((c) => runPostcat([...c.opts, c.file], dir)));
    cases.forEach((c, i) => {
      const label = `postcat ${c.opts.join(" ")} ${c.file}`;
      assertEquals(binary(results[i].out), binary(c.expected), label);
      assertEquals(results[i].code, c.exit, `${label}: exit status`);
    });
    Deno.removeSync(dir, { recursive: true });
  });
}
