// The content reader delivery agents share: records joined into lines, pointers
// followed, header and body split, bytes rebuilt with any line ending.

import { assertEquals, assertThrows } from "../../assert.ts";
import { encodeRecord, pointerRecord } from "../../../lib/queue/record.ts";
import {
  contentLines,
  headerValue,
  headerValues,
  messageBytes,
  MessageContentError,
  splitContent,
} from "../../../lib/deliver/message.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function file(parts: Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function text(lines: Uint8Array[]): string[] {
  return lines.map((l) => dec.decode(l));
}

Deno.test("contentLines joins L fragments and stops at the X record", () => {
  const head = encodeRecord("M");
  const data = file([
    head,
    encodeRecord("N", "Subject: hi"),
    encodeRecord("N", ""),
    encodeRecord("L", "a long "),
    encodeRecord("N", "line"),
    encodeRecord("X"),
    encodeRecord("R", "not content"),
  ]);
  assertEquals(text(contentLines(data, head.length)), ["Subject: hi", "", "a long line"]);
});

Deno.test("contentLines follows a pointer to a header cleanup appended", () => {
  const head = encodeRecord("M");
  const first = encodeRecord("N", "Subject: old");
  // Layout: M, p -> appended, N body..., X, then the appended part with a p back.
  const p1Len = pointerRecord(0).length;
  const bodyStart = head.length + p1Len;
  const body = file([encodeRecord("N", ""), encodeRecord("N", "body"), encodeRecord("X")]);
  const appendedAt = bodyStart + body.length;
  const appended = file([first, encodeRecord("N", "X-Added: yes"), pointerRecord(bodyStart)]);
  const data = file([head, pointerRecord(appendedAt), body, appended]);
  assertEquals(text(contentLines(data, head.length)), ["Subject: old", "X-Added: yes", "", "body"]);
});

Deno.test("contentLines refuses a content region without its end", () => {
  const head = encodeRecord("M");
  const data = file([head, encodeRecord("N", "x")]);
  assertThrows(() => contentLines(data, head.length), MessageContentError);
});

Deno.test("splitContent and messageBytes keep the header/body boundary", () => {
  const lines = ["From: a@b", "Subject: one", "\ttwo", "", "body", ".dot"].map((l) =>
    enc.encode(l)
  );
  const msg = splitContent(lines);
  assertEquals(msg.header.length, 3);
  assertEquals(text(msg.body), ["body", ".dot"]);
  assertEquals(headerValue(msg, "subject"), "one\ttwo");
  assertEquals(headerValues(msg, "FROM"), ["a@b"]);
  assertEquals(
    dec.decode(messageBytes(msg, { eol: "\r\n", prepend: ["Delivered-To: x@y"] })),
    "Delivered-To: x@y\r\nFrom: a@b\r\nSubject: one\r\n\ttwo\r\n\r\nbody\r\n.dot\r\n",
  );
  const stuffed = messageBytes(msg, {
    transform: (l) => l[0] === 0x2e ? file([enc.encode("."), l]) : l,
  });
  assertEquals(dec.decode(stuffed).split("\n").at(-2), "..dot");
});

Deno.test("splitContent: a message without a header is all body", () => {
  const msg = splitContent(["just text", "more"].map((l) => enc.encode(l)));
  assertEquals(msg.header, []);
  assertEquals(dec.decode(messageBytes(msg)), "just text\nmore\n");
});
