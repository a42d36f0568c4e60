import { assertEquals, assertThrows } from "../assert.ts";
import { getopt, GetoptError } from "../../lib/getopt.ts";

Deno.test("getopt() clusters flags and takes attached or separate arguments", () => {
  const r = getopt(["-ti", "-fsender", "-F", "Full Name", "rcpt"], "tiF:f:");
  assertEquals(r.options, [
    { flag: "t" },
    { flag: "i" },
    { flag: "f", arg: "sender" },
    { flag: "F", arg: "Full Name" },
  ]);
  assertEquals(r.operands, ["rcpt"]);
});

Deno.test("getopt() stops at the first operand as Postfix's '+' getopt does", () => {
  const r = getopt(["-d", "ALL", "deferred", "-v"], "d:v");
  assertEquals(r.options, [{ flag: "d", arg: "ALL" }]);
  assertEquals(r.operands, ["deferred", "-v"]);
});

Deno.test("getopt() treats -- as the end and a lone - as an operand", () => {
  assertEquals(getopt(["-v", "--", "-x"], "v").operands, ["-x"]);
  assertEquals(getopt(["-q", "-", "hash:x"], "q:").options, [{ flag: "q", arg: "-" }]);
  assertEquals(getopt(["-", "-v"], "v").operands, ["-", "-v"]);
});

Deno.test("getopt() rejects an unknown flag and a missing argument with glibc's words", () => {
  const e = assertThrows(() => getopt(["-z"], "v"), GetoptError);
  assertEquals(e.message, "invalid option -- 'z'");
  const m = assertThrows(() => getopt(["-c"], "c:"), GetoptError);
  assertEquals(m.message, "option requires an argument -- 'c'");
});
