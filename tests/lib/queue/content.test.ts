import { assertEquals } from "../../assert.ts";
import {
  HeaderStage,
  isHeaderStart,
  LineSplitter,
  type SplitOptions,
  type TextRecord,
} from "../../../lib/queue/content.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function split(input: string | Uint8Array, options: Partial<SplitOptions> = {}, chunk = 7) {
  const out: string[] = [];
  const s = new LineSplitter(
    { lineLimit: 2048, fixLineEndings: "always", ignoreDot: false, ...options },
    (r) => out.push(`${r.type}:${dec.decode(r.data)}`),
  );
  const bytes = typeof input === "string" ? enc.encode(input) : input;
  for (let i = 0; i < bytes.length && !s.stopped; i += chunk) s.push(bytes.subarray(i, i + chunk));
  s.end();
  return out;
}

Deno.test("LineSplitter cuts long lines into L records as the reference's sendmail does", () => {
  const x = "x".repeat(5000), y = "y".repeat(2048), z = "z".repeat(2049);
  assertEquals(split(`${x}\r\n${y}\r\n${z}\r\n`), [
    `L:${"x".repeat(2048)}`,
    `L:${"x".repeat(2048)}`,
    `N:${"x".repeat(904)}`,
    `L:${y}`,
    "N:",
    `L:${"z".repeat(2048)}`,
    "N:z",
  ]);
});

Deno.test("LineSplitter: a lone dot ends the input unless -i", () => {
  assertEquals(split("a\n.\nb\n"), ["N:a"]);
  assertEquals(split("a\n.\nb\n", { ignoreDot: true }), ["N:a", "N:.", "N:b"]);
  assertEquals(split("a\n.\r\nb\n"), ["N:a"]);
  assertEquals(split("..\n. \n"), ["N:..", "N:. "]);
});

Deno.test("LineSplitter keeps NUL bytes and bare CRs and strips CR before LF", () => {
  assertEquals(split("ab\0cd\rx\r\ny\n"), ["N:ab\0cd\rx", "N:y"]);
  assertEquals(split("a\r\nb\r\n", { fixLineEndings: "never" }), ["N:a\r", "N:b\r"]);
  assertEquals(split("a\nb\r\n", { fixLineEndings: "strict" }), ["N:a", "N:b\r"]);
});

Deno.test("LineSplitter: a last line without newline is still a line; an empty input is none", () => {
  assertEquals(split("a\nlast"), ["N:a", "N:last"]);
  assertEquals(split(""), []);
});

Deno.test("isHeaderStart() follows Postfix's is_header()", () => {
  for (const yes of ["To: x", "X-Y :z", "a:"]) {
    assertEquals(isHeaderStart(enc.encode(yes)), true, yes);
  }
  for (const no of ["", " To: x", "To x", ":x", "Sub ject: y"]) {
    assertEquals(isHeaderStart(enc.encode(no)), false, no);
  }
});

function headers(lines: string[], extract: boolean) {
  const out: string[] = [];
  const stage = new HeaderStage(
    { extract, headerLimit: 102400 },
    (r) => out.push(dec.decode(r.data)),
  );
  for (const line of lines) stage.push({ type: "N", data: enc.encode(line) } as TextRecord);
  stage.end();
  return { out, recipients: stage.recipients };
}

Deno.test("HeaderStage with -t takes To, Cc and Bcc recipients and drops Bcc", () => {
  const got = headers([
    "From: f@example.com",
    "To: grace@example.com",
    'Cc: heidi@example.com, "Ivan X"',
    " <ivan@example.com>",
    "Bcc: judy@example.com,",
    "\tkim@example.com",
    "Subject: s",
    "",
    "To: not-a-header@example.com",
  ], true);
  assertEquals(got.recipients, [
    "grace@example.com",
    "heidi@example.com",
    "ivan@example.com",
    "judy@example.com",
    "kim@example.com",
  ]);
  assertEquals(got.out, [
    "From: f@example.com",
    "To: grace@example.com",
    'Cc: heidi@example.com, "Ivan X"',
    " <ivan@example.com>",
    "Subject: s",
    "",
    "To: not-a-header@example.com",
  ]);
});

Deno.test("HeaderStage uses Resent- headers when present, and leaves text alone without -t", () => {
  const got = headers(["To: a@x", "Resent-To: b@x", "Resent-Bcc: c@x", "", "body"], true);
  assertEquals(got.recipients, ["b@x", "c@x"]);
  assertEquals(got.out, ["To: a@x", "Resent-To: b@x", "", "body"]);
  const plain = headers(["Bcc: c@x", "", "body"], false);
  assertEquals(plain.out, ["Bcc: c@x", "", "body"]);
  assertEquals(plain.recipients, []);
});
