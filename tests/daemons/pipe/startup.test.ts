// The pipe program started as the master starts it, with bad master.cf
// attributes: each refusal is fatal before any request is taken, with the
// reference's wording, and exit status 1 (the master then throttles it).

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { runProgram } from "../../run.ts";

async function start(attributes: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "pipe-start-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/main.cf`,
      `queue_directory = ${dir}/queue\nmail_owner = no-such-owner\n`,
    );
    return await runProgram("pipe", ["-L", `unix:${dir}/pipe.sock`, ...attributes], {
      env: { MAIL_CONFIG: dir },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("pipe without user= is fatal at start", async () => {
  const r = await start(["argv=/bin/cat"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "pipe: fatal: missing user= command-line attribute");
});

Deno.test("pipe with user=root is fatal at start", async () => {
  const r = await start(["user=root", "argv=/bin/cat"]);
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "pipe: fatal: user= command-line attribute specifies root privileges",
  );
});

Deno.test("pipe with an unknown flag is fatal at start", async () => {
  const r = await start(["flags=DZ", "user=nobody", "argv=/bin/cat"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "pipe: fatal: unknown flag: Z (ignored)");
});

Deno.test("pipe without argv= is fatal at start", async () => {
  const r = await start(["user=nobody", "flags=R"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "pipe: fatal: missing argv= command-line attribute");
});
