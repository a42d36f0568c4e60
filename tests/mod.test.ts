import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { runProgram } from "./run.ts";

Deno.test("posthorn --help lists the programs built in", async () => {
  const r = await runProgram("--help", []);
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "programs built in:");
  assertStringIncludes(r.stdout, "postlog");
  // Every program of the Postfix family answers to its name.
  const listed = r.stdout.split("programs built in:")[1].trim().split(/\s+/);
  for (const name of ["sendmail", "smtpd", "smtp", "lmtp", "local", "virtual", "pipe", "oqmgr"]) {
    assert(listed.includes(name), name);
  }
  assertEquals(listed.length, 41);
});

Deno.test("an unknown program name exits 1 with a clear message", async () => {
  const r = await runProgram("frobnicate", []);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, 'program "frobnicate" is unknown');
});
