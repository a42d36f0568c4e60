import { assertEquals } from "../assert.ts";
import { captureLog, configureLog, fatal, FatalError, logTimestamp, warn } from "../../lib/log.ts";
import { assertThrows } from "../assert.ts";

Deno.test("logTimestamp() zero-pads the day as Postfix's maillog_file does", () => {
  assertEquals(logTimestamp(new Date(2026, 10, 4, 9, 5, 1)), "Nov 04 09:05:01");
});

Deno.test("warn() and fatal() prefix their level; fatal() throws FatalError", () => {
  const lines: string[] = [];
  configureLog({ program: "test" });
  captureLog((line) => lines.push(line));
  try {
    warn("w");
    assertThrows(() => fatal("f"), FatalError);
  } finally {
    captureLog(undefined);
  }
  assertEquals(lines, ["warning: w", "fatal: f"]);
});
