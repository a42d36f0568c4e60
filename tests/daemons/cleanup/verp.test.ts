// cleanup and the VERP request record (V), as the reference's cleanup
// handles it (its warnings recorded from a reference instance fed the same
// maildrop records): the first acceptable request is kept in place after
// the sender; a request before the sender or with the null sender, or with
// delimiters outside verp_delimiter_filter, is dropped with a warning;
// later requests are dropped silently.

import { assertEquals } from "../../assert.ts";
import { type InputRecord } from "../../../daemons/cleanup/core.ts";
import { rec, run } from "./helpers.ts";

/** The records pickup sends, with V records where asked. */
function message(sender: string, verp: string[], before: string[] = []): InputRecord[] {
  return [
    rec("T", "1795533859 386243"),
    rec("A", "rewrite_context=local"),
    ...before.map((v) => rec("V", v)),
    rec("F", ""),
    rec("S", sender),
    ...verp.map((v) => rec("V", v)),
    rec("R", "a@x.org"),
    rec("M"),
    rec("N", "Subject: verp"),
    rec("X"),
    rec("E"),
  ];
}

/** The envelope records from the sender to the recipient. */
function envelope(records: { type: string; text: string }[]): string[] {
  const from = records.findIndex((r) => r.type === "S");
  const to = records.findIndex((r) => r.type === "R");
  return records.slice(from, to + 1).map((r) => `${r.type} ${r.text}`);
}

Deno.test("cleanup keeps a VERP request after the sender, as the reference", async () => {
  const r = await run(message("list@example.com", ["+="]));
  assertEquals(r.log.filter((l) => l.startsWith("warning")), []);
  assertEquals(envelope(r.records), [
    "S list@example.com",
    "V +=",
    "A dsn_orig_rcpt=rfc822;a@x.org",
    "O a@x.org",
    "R a@x.org",
  ]);
});

Deno.test("cleanup ignores VERP delimiters outside verp_delimiter_filter", async () => {
  for (const bad of ["ab", "+", "+=-", "+a"]) {
    const r = await run(message("list@example.com", [bad]));
    assertEquals(r.log.filter((l) => l.startsWith("warning")), [
      `warning: ABC123: ignoring bad VERP request: "${bad}"`,
    ]);
    assertEquals(r.records.filter((x) => x.type === "V"), []);
    assertEquals(r.rcpts, ["a@x.org"], "the message goes on without VERP");
  }
  // The filter decides which characters are acceptable.
  const r = await run(message("list@example.com", ["ab"]), "verp_delimiter_filter = ab\n");
  assertEquals(r.records.filter((x) => x.type === "V").map((x) => x.text), ["ab"]);
});

Deno.test("cleanup ignores a VERP request for the null sender or before the sender", async () => {
  for (
    const r of [await run(message("", ["+="])), await run(message("l@example.com", [], ["-="]))]
  ) {
    assertEquals(r.log.filter((l) => l.startsWith("warning")), [
      "warning: ABC123: ignoring VERP request for null sender",
    ]);
    assertEquals(r.records.filter((x) => x.type === "V"), []);
  }
});

Deno.test("cleanup keeps the first acceptable VERP request only", async () => {
  const twice = await run(message("list@example.com", ["+=", "-="]));
  assertEquals(twice.log.filter((l) => l.startsWith("warning")), []);
  assertEquals(twice.records.filter((x) => x.type === "V").map((x) => x.text), ["+="]);
  const badFirst = await run(message("list@example.com", ["ab", "-=", "+="]));
  assertEquals(badFirst.log.filter((l) => l.startsWith("warning")), [
    'warning: ABC123: ignoring bad VERP request: "ab"',
  ]);
  assertEquals(badFirst.records.filter((x) => x.type === "V").map((x) => x.text), ["-="]);
});
