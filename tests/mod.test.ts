import { assertEquals, assertStringIncludes } from "./assert.ts";
import { runProgram } from "./run.ts";

Deno.test("posthorn --help lists the programs built in", async () => {
  const r = await runProgram("--help", []);
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "programs built in:");
  assertStringIncludes(r.stdout, "postlog");
});

Deno.test("an unknown program name exits 1 with a clear message", async () => {
  const r = await runProgram("frobnicate", []);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, 'program "frobnicate" is unknown');
});

Deno.test("a family program that is not built yet is refused, not stubbed", async () => {
  const r = await runProgram("oqmgr", []);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "is not built into this posthorn yet");
});
