// header_checks, mime_header_checks, nested_header_checks and body_checks
// with each action of header_checks(5).

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { CleanupStat } from "../../../daemons/cleanup/status.ts";
import { ActionError, parseAction } from "../../../daemons/cleanup/actions.ts";
import { checks, run } from "./helpers.ts";

const msg =
  "Subject: buy now\nFrom: alice@example.com\nTo: bob@example.com\n\nhello\nspam line\nbye";
const hdr = (action: string) => ({ headerChecks: checks([[/^Subject: buy/, action]]) });
const body = (action: string) => ({ bodyChecks: checks([[/^spam/, action]]) });

Deno.test("header REJECT refuses the message with the default reason and logs it", async () => {
  const r = await run({ text: msg }, "", hdr("REJECT"));
  assertEquals(r.status, CleanupStat.CONT);
  assertEquals(r.reason, "5.7.1 message content rejected");
  assertEquals(r.file, null);
  assertEquals(
    r.log[0],
    "ABC123: reject: header Subject: buy now from local; from=<alice@example.com> to=<bob@example.com>: 5.7.1 message content rejected",
  );
});

Deno.test("REJECT text gets 5.7.1 unless it has its own code", async () => {
  assertEquals((await run({ text: msg }, "", hdr("REJECT no spam"))).reason, "5.7.1 no spam");
  assertEquals((await run({ text: msg }, "", hdr("REJECT 4.7.0 later"))).reason, "4.7.0 later");
});

Deno.test("body REJECT logs the body line", async () => {
  const r = await run({ text: msg }, "", body("REJECT"));
  assertEquals(r.status, CleanupStat.CONT);
  assertStringIncludes(r.log.join("\n"), "ABC123: reject: body spam line from local;");
});

Deno.test("DISCARD claims success and queues nothing", async () => {
  const r = await run({ text: msg }, "", hdr("DISCARD gone"));
  assertEquals(r.status, 0);
  assertEquals(r.discarded, true);
  assertEquals(r.file, null);
  assertStringIncludes(r.log[0], "ABC123: discard: header Subject: buy now from local;");
  assertStringIncludes(r.log[0], ": gone");
});

Deno.test("HOLD sends the message to the hold queue", async () => {
  const r = await run({ text: msg }, "", body("HOLD"));
  assertEquals(r.queue, "hold");
  assert(r.file !== null);
  assertStringIncludes(r.log.join("\n"), "ABC123: hold: body spam line from local;");
});

Deno.test("REDIRECT and FILTER write their records after the content", async () => {
  const r = await run({ text: msg }, "", {
    headerChecks: checks([[/^Subject/, "FILTER smtp:[::1]:10025"], [
      /^To/,
      "REDIRECT trap@example.com",
    ]]),
  });
  const x = r.records.findIndex((v) => v.type === "X");
  const tail = r.records.slice(x);
  assert(tail.some((v) => v.type === ">" && v.text === "trap@example.com"));
  assert(tail.some((v) => v.type === "L" && v.text === "smtp:[::1]:10025"));
  assertStringIncludes(r.log[0], "filter: header Subject: buy now");
  assertStringIncludes(r.log[1], "redirect: header To: bob@example.com");
  // A FILTER after a REDIRECT is not taken.
  const r2 = await run({ text: msg }, "", {
    headerChecks: checks([[/^Subject/, "REDIRECT trap@example.com"], [/^To/, "FILTER smtp:x"]]),
  });
  assert(!r2.records.some((v) => v.type === "L"));
});

Deno.test("WARN and INFO only log", async () => {
  const r = await run({ text: msg }, "", {
    headerChecks: checks([[/^Subject/, "WARN look"]]),
    bodyChecks: checks([[/^spam/, "INFO noted"]]),
  });
  assertEquals(r.status, 0);
  assert(r.lines.includes("Subject: buy now"));
  assertStringIncludes(r.log[0], "ABC123: warning: header Subject: buy now from local;");
  assertStringIncludes(r.log[0], ": look");
  assertStringIncludes(r.log.join("\n"), "ABC123: info: body spam line from local;");
});

Deno.test("IGNORE deletes silently; STRIP deletes and logs", async () => {
  const r = await run({ text: msg }, "", { ...hdr("IGNORE"), ...body("STRIP") });
  assert(!r.lines.includes("Subject: buy now"));
  assert(!r.lines.includes("spam line"));
  assertEquals(r.log.filter((l) => l.includes("strip:")).length, 1);
  assertEquals(r.log.filter((l) => l.includes("header Subject")).length, 0);
});

Deno.test("PREPEND inserts a line before the matching one", async () => {
  const r = await run({ text: msg }, "", {
    ...hdr("PREPEND X-Spam: yes"),
    ...body("PREPEND [flagged]"),
  });
  const i = r.lines.indexOf("Subject: buy now");
  assertEquals(r.lines[i - 1], "X-Spam: yes");
  const j = r.lines.indexOf("spam line");
  assertEquals(r.lines[j - 1], "[flagged]");
});

Deno.test("REPLACE swaps the line and logs", async () => {
  const r = await run({ text: msg }, "", {
    ...hdr("REPLACE Subject: [SPAM] buy now"),
    ...body("REPLACE ham"),
  });
  assert(r.lines.includes("Subject: [SPAM] buy now"));
  assert(r.lines.includes("ham"));
  assert(!r.lines.includes("spam line"));
  assertStringIncludes(r.log[0], "replace: header Subject: buy now");
});

Deno.test("DUNNO and OK leave the line alone", async () => {
  for (const a of ["DUNNO", "OK"]) {
    const r = await run({ text: msg }, "", hdr(a));
    assert(r.lines.includes("Subject: buy now"));
    assertEquals(r.log.length, 1); // only message-id
  }
});

Deno.test("BCC adds a NOTIFY=NONE recipient", async () => {
  const r = await run({ text: msg }, "", hdr("BCC audit@example.com"));
  assertEquals(r.rcpts, ["bob@example.com", "audit@example.com"]);
});

Deno.test("PASS stops further checks", async () => {
  const r = await run({ text: msg }, "", { ...hdr("PASS"), ...body("REJECT") });
  assertEquals(r.status, 0);
  assertStringIncludes(r.log[0], "pass: header Subject: buy now");
});

Deno.test("header_checks see a folded header as one text with newlines; the log shows them as ?", async () => {
  const seen: string[] = [];
  const r = await run({ text: "Subject: a\n\tb\n\nx" }, "", {
    headerChecks: (
      l,
    ) => (seen.push(l), Promise.resolve(l.startsWith("Subject") ? "WARN w" : undefined)),
  });
  assert(seen.includes("Subject: a\n\tb"));
  // Postfix's printable(): control characters in log text become "?".
  assertStringIncludes(r.log[0], "warning: header Subject: a??b from local;");
});

Deno.test("headers cleanup adds are not inspected", async () => {
  const seen: string[] = [];
  await run({ text: "Subject: x\n\nb" }, "", {
    headerChecks: (l) => (seen.push(l), Promise.resolve(undefined)),
  });
  assertEquals(seen, ["Subject: x"]);
});

Deno.test("MIME headers go to mime_header_checks, attached message headers to nested_header_checks", async () => {
  const text = [
    "Subject: outer",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b"',
    "",
    "--b",
    "Content-Type: message/rfc822",
    "",
    "Subject: inner",
    "",
    "inner body",
    "--b--",
  ].join("\n");
  const seen: Record<string, string[]> = { h: [], m: [], n: [], b: [] };
  const spy = (k: string) => (l: string) => (seen[k].push(l), Promise.resolve(undefined));
  await run({ text }, "", {
    headerChecks: spy("h"),
    mimeHeaderChecks: spy("m"),
    nestedHeaderChecks: spy("n"),
    bodyChecks: spy("b"),
  });
  assertEquals(seen.h, ["Subject: outer"]);
  assertEquals(seen.m, [
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b"',
    "Content-Type: message/rfc822",
  ]);
  assertEquals(seen.n, ["Subject: inner"]);
  assert(seen.b.includes("inner body"));
  assert(!seen.b.includes("Subject: inner"));
});

Deno.test("body_checks_size_limit bounds the inspected body", async () => {
  const seen: string[] = [];
  const text = "Subject: x\n\n" + Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  await run({ text }, "body_checks_size_limit = 50", {
    bodyChecks: (l) => (seen.push(l), Promise.resolve(undefined)),
  });
  assert(seen.length < 10 && seen.length > 0);
});

Deno.test("an unknown action or a bad argument is warned about and ignored", async () => {
  const r = await run({ text: msg }, "", hdr("FROBNICATE"));
  assertEquals(r.status, 0);
  assertStringIncludes(
    r.log.join("\n"),
    "warning: unknown command in header_checks map: FROBNICATE",
  );
  let err: unknown;
  try {
    parseAction("PREPEND no colon here", "header_checks", true);
  } catch (e) {
    err = e;
  }
  assert(err instanceof ActionError);
});

Deno.test("without the FILTER flag no checks run", async () => {
  const r = await run({ text: msg }, "", hdr("REJECT"), 0b110000);
  assertEquals(r.status, 0);
});
