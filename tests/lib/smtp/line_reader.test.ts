// lib/smtp: the line reader (CRLF and LF lines, the length limit, BDAT byte
// counts, end of input, timeouts) and reply formatting.

import { assertEquals, assertRejects } from "../../assert.ts";
import { LineReader, ReadTimeout } from "../../../lib/smtp/line_reader.ts";
import { formatReply, parseReplyText, replyText, softened } from "../../../lib/smtp/reply.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("LineReader.readLine() splits CRLF and bare LF lines across chunks", async () => {
  const r = new LineReader();
  r.push(enc.encode("HELO a"));
  r.push(enc.encode("\r\nNOOP\nQU"));
  r.push(enc.encode("IT\r\n"));
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push(dec.decode((await r.readLine(100))!.bytes));
  assertEquals(got, ["HELO a", "NOOP", "QUIT"]);
});

Deno.test("LineReader.readLine() hands out a long line in pieces marked incomplete", async () => {
  const r = new LineReader();
  r.push(enc.encode("x".repeat(25) + "\r\n"));
  const a = (await r.readLine(10))!;
  const b = (await r.readLine(10))!;
  const c = (await r.readLine(10))!;
  assertEquals([a.complete, b.complete, c.complete], [false, false, true]);
  assertEquals(a.bytes.length + b.bytes.length + c.bytes.length, 25);
});

Deno.test("LineReader returns null at end of input and the unterminated rest before it", async () => {
  const r = new LineReader();
  r.push(enc.encode("tail"));
  r.end();
  assertEquals(dec.decode((await r.readLine(100))!.bytes), "tail");
  assertEquals(await r.readLine(100), null);
});

Deno.test("LineReader.readBytes() reads counted bytes without line splitting", async () => {
  const r = new LineReader();
  r.push(enc.encode("ab\r\ncd"));
  assertEquals(dec.decode((await r.readBytes(3))!), "ab\r");
  assertEquals(dec.decode((await r.readBytes(10))!), "\ncd");
});

Deno.test("LineReader times out when nothing arrives", async () => {
  const r = new LineReader();
  r.timeoutMs = 20;
  await assertRejects(() => r.readLine(100), ReadTimeout);
});

Deno.test("formatReply() writes multi-line replies with enhanced codes on every line", () => {
  assertEquals(formatReply({ code: 250, dsn: "", text: ["a", "b"] }), "250-a\r\n250 b\r\n");
  assertEquals(formatReply({ code: 550, dsn: "5.1.1", text: "no" }), "550 5.1.1 no\r\n");
  assertEquals(replyText({ code: 554, dsn: "5.7.1", text: "x" }), "554 5.7.1 x");
});

Deno.test("parseReplyText() takes the code, an enhanced code or the default in the code's class", () => {
  assertEquals(parseReplyText("550 5.1.1 gone", "5.7.1"), {
    code: 550,
    dsn: "5.1.1",
    text: "gone",
  });
  assertEquals(parseReplyText("450 try later", "5.7.1"), {
    code: 450,
    dsn: "4.7.1",
    text: "try later",
  });
  assertEquals(parseReplyText("REJECT", "5.7.1"), undefined);
});

Deno.test("softened() turns 5xx into 4xx for soft_bounce", () => {
  assertEquals(softened({ code: 554, dsn: "5.7.1", text: "t" }), {
    code: 454,
    dsn: "4.7.1",
    text: "t",
  });
  assertEquals(softened({ code: 250, dsn: "2.0.0", text: "t" }).code, 250);
});
