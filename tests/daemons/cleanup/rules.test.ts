// Each cleanup rule on a real queue file, decoded with lib/queue's reader.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { CleanupStat } from "../../../daemons/cleanup/status.ts";
import { unescapeBytes } from "../../../daemons/cleanup/core.ts";
import { rec, run, table } from "./helpers.ts";

const plain = "Subject: hi\nFrom: alice@example.com\nTo: bob@example.com\n\nbody";

Deno.test("cleanup adds Message-Id, Date and From to a message without them, and logs message-id", async () => {
  const r = await run({ text: "Subject: x\n\nbody", fullname: "Alice Q. Example" });
  assertEquals(r.lines.slice(0, 4), [
    "Subject: x",
    "Message-Id: <20261124152452.ABC123@mail.example.com>",
    "Date: Tue, 24 Nov 2026 15:24:19 +0000 (UTC)",
    'From: "Alice Q. Example" <alice@example.com>',
  ]);
  assertEquals(r.log, ["ABC123: message-id=<20261124152452.ABC123@mail.example.com>"]);
});

Deno.test("cleanup adds Resent- headers when the message has Resent- headers", async () => {
  const r = await run({
    text: "Resent-To: x@example.com\nFrom: a@example.com\nDate: x\nMessage-ID: <m@x>\n\nb",
  });
  assert(r.lines.includes("Resent-Message-Id: <20261124152452.ABC123@mail.example.com>"));
  assert(r.lines.some((l) => l.startsWith("Resent-Date: ")));
  assert(r.lines.includes("Resent-From: alice@example.com"));
  assertEquals(r.log[0], "ABC123: message-id=<m@x>");
});

Deno.test("cleanup adds undisclosed_recipients_header when no recipient header exists", async () => {
  const r = await run(
    { text: "Subject: x\n\nb" },
    "undisclosed_recipients_header = To: undisclosed-recipients:;",
  );
  assert(r.lines.includes("To: undisclosed-recipients:;"));
  const r2 = await run({ text: "Subject: x\n\nb" });
  assert(!r2.lines.some((l) => l.startsWith("To:")));
});

Deno.test("cleanup adds no missing headers for a remote client unless always_add_missing_headers", async () => {
  const r = await run({ text: "Subject: x\n\nb", rewriteContext: "remote" });
  assertEquals(r.lines, ["Subject: x", "", "b"]);
  const r2 = await run(
    { text: "Subject: x\n\nb", rewriteContext: "remote" },
    "always_add_missing_headers = yes",
  );
  assert(r2.lines.some((l) => l.startsWith("Message-Id:")));
});

Deno.test("cleanup removes Bcc, Content-Length and Return-Path headers", async () => {
  const r = await run({ text: "Bcc: x@y\nContent-Length: 5\nReturn-Path: <a@b>\n" + plain });
  assert(!r.lines.some((l) => /^(Bcc|Content-Length|Return-Path):/.test(l)));
});

Deno.test("cleanup appends @myorigin to envelope and header addresses (local rewrite context)", async () => {
  const r = await run({
    sender: "alice",
    recipients: ["bob"],
    text: "To: bob, Carol <carol>\n\nb",
  });
  assertEquals(r.records.find((x) => x.type === "S")?.text, "alice@example.com");
  assertEquals(r.rcpts, ["bob@example.com"]);
  assertEquals(r.records.find((x) => x.type === "O")?.text, "bob");
  assertEquals(r.lines[0], "To: bob@example.com, Carol <carol@example.com>");
});

Deno.test("cleanup leaves header addresses of a remote client alone", async () => {
  const r = await run({ rewriteContext: "remote", recipients: ["bob"], text: "To: bob\n\nb" });
  assertEquals(r.lines[0], "To: bob");
  assertEquals(r.rcpts, ["bob@example.com"]);
});

Deno.test("canonical_maps rewrite sender and recipients in envelope and headers", async () => {
  const r = await run(
    {
      sender: "alice@example.com",
      recipients: ["bob@example.com"],
      text: "From: alice@example.com\nTo: Bob <bob@example.com>\n\nb",
    },
    "",
    {
      canonical: table({
        "alice@example.com": "Alice.Smith@example.com",
        "bob@example.com": "robert@example.com",
      }),
    },
  );
  assertEquals(r.records.find((x) => x.type === "S")?.text, "Alice.Smith@example.com");
  assertEquals(r.rcpts, ["robert@example.com"]);
  assertEquals(r.records.find((x) => x.type === "O")?.text, "bob@example.com");
  assertEquals(r.lines.slice(0, 2), [
    "From: Alice.Smith@example.com",
    "To: Bob <robert@example.com>",
  ]);
});

Deno.test("sender_canonical_maps apply to senders only; canonical_classes limit canonical_maps", async () => {
  const map = table({ "x@example.com": "y@example.com" });
  const r = await run(
    {
      sender: "x@example.com",
      recipients: ["x@example.com"],
      text: "From: x@example.com\nTo: x@example.com\n\nb",
    },
    "",
    { senderCanonical: map },
  );
  assertEquals(r.records.find((x) => x.type === "S")?.text, "y@example.com");
  assertEquals(r.rcpts, ["x@example.com"]);
  assertEquals(r.lines.slice(0, 2), ["From: y@example.com", "To: x@example.com"]);
  const r2 = await run(
    { sender: "x@example.com", recipients: ["x@example.com"], text: "To: x@example.com\n\nb" },
    "canonical_classes = envelope_recipient",
    { canonical: map },
  );
  assertEquals(r2.records.find((x) => x.type === "S")?.text, "x@example.com");
  assertEquals(r2.rcpts, ["y@example.com"]);
  assertEquals(r2.lines[0], "To: x@example.com");
});

Deno.test("recipient_canonical_maps apply to recipients only", async () => {
  const r = await run(
    { sender: "x@example.com", recipients: ["x@example.com"], text: "To: x@example.com\n\nb" },
    "",
    { recipientCanonical: table({ "x@example.com": "z@example.com" }) },
  );
  assertEquals(r.records.find((x) => x.type === "S")?.text, "x@example.com");
  assertEquals(r.rcpts, ["z@example.com"]);
  assertEquals(r.lines[0], "To: z@example.com");
});

Deno.test("masquerade_domains strip subdomains, with exceptions and exclusions", async () => {
  const cf = "masquerade_domains = !keep.example.com, example.com\nmasquerade_exceptions = root";
  const r = await run(
    {
      sender: "alice@host.example.com",
      recipients: ["bob@host.example.com"],
      text: "From: alice@host.example.com\nCc: root@a.example.com, u@keep.example.com\n\nb",
    },
    cf,
  );
  assertEquals(r.records.find((x) => x.type === "S")?.text, "alice@example.com");
  // envelope_recipient is not in the default masquerade_classes.
  assertEquals(r.rcpts, ["bob@host.example.com"]);
  assertEquals(r.lines[0], "From: alice@example.com");
  assertEquals(r.lines[1], "Cc: root@a.example.com, u@keep.example.com");
});

Deno.test("virtual_alias_maps expand recipients recursively, eliminating duplicates", async () => {
  const r = await run(
    { recipients: ["team@example.com", "ann@example.com"], text: plain },
    "",
    {
      virtualAlias: table({
        "team@example.com": "ann@example.com,lead@example.com",
        "lead@example.com": "lead@example.com,boss@example.com",
      }),
    },
  );
  assertEquals(r.rcpts, [
    "ann@example.com",
    "lead@example.com",
    "boss@example.com",
    "ann@example.com",
  ]);
  // The same final address with a different original recipient is kept (Postfix's rule).
  assertEquals(r.records.filter((x) => x.type === "O").map((x) => x.text), [
    "team@example.com",
    "team@example.com",
    "team@example.com",
    "ann@example.com",
  ]);
  const dup = await run({ recipients: ["a@example.com", "a@example.com"], text: plain });
  assertEquals(dup.rcpts, ["a@example.com"]);
});

Deno.test("virtual_alias_recursion_limit defers the message with a warning", async () => {
  const loop = (k: string) => Promise.resolve(`x${k}`);
  const r = await run(
    { recipients: ["a@example.com"], text: plain },
    "virtual_alias_recursion_limit = 5",
    { virtualAlias: loop },
  );
  assertEquals(r.status, CleanupStat.DEFER);
  assertEquals(r.reason, "4.6.0 Alias expansion error");
  assertEquals(r.file, null);
  assertStringIncludes(
    r.log.join("\n"),
    "warning: ABC123: unreasonable virtual_alias_maps map nesting for a@example.com -- message not accepted",
  );
});

Deno.test("virtual_alias_expansion_limit defers the message with a warning", async () => {
  const many = Array.from({ length: 20 }, (_, i) => `u${i}@example.com`).join(",");
  const r = await run(
    { recipients: ["list@example.com"], text: plain },
    "virtual_alias_expansion_limit = 10",
    {
      virtualAlias: table({ "list@example.com": many }),
    },
  );
  assertEquals(r.status, CleanupStat.DEFER);
  assertStringIncludes(
    r.log.join("\n"),
    "unreasonable virtual_alias_maps map expansion size for list@example.com",
  );
});

Deno.test("always_bcc, sender_bcc_maps and recipient_bcc_maps add NOTIFY=NONE recipients after the content", async () => {
  const r = await run(
    { text: plain },
    "always_bcc = archive@example.com",
    {
      senderBcc: table({ "alice@example.com": "sent@example.com" }),
      recipientBcc: table({ "bob@example.com": "bobcopy@example.com" }),
    },
  );
  assertEquals(r.rcpts, [
    "bob@example.com",
    "archive@example.com",
    "sent@example.com",
    "bobcopy@example.com",
  ]);
  const x = r.records.findIndex((v) => v.type === "X");
  const firstBcc = r.records.findIndex((v) => v.type === "R" && v.text === "archive@example.com");
  assert(firstBcc > x);
  assertEquals(r.records[firstBcc - 2].text, "notify_flags=1");
});

Deno.test("no BCC recipients without the BCC_OK flag", async () => {
  const r = await run({ text: plain }, "always_bcc = archive@example.com", {}, 0b100010);
  assertEquals(r.rcpts, ["bob@example.com"]);
});

Deno.test("hopcount_limit: the message is refused at that many Received headers", async () => {
  const received = (n: number) =>
    Array.from({ length: n }, () => "Received: from x by y\n").join("");
  const r = await run({ text: received(4) + plain }, "hopcount_limit = 3");
  assertEquals(r.status, CleanupStat.HOPS);
  assertEquals(r.reason, "5.4.0 too many hops");
  assertEquals(r.file, null);
  // One warning per Received header from the limit on, as the reference logs.
  assertEquals(
    r.log.filter((l) => l === "warning: ABC123: message rejected: hopcount exceeded").length,
    2,
  );
  assertEquals((await run({ text: received(2) + plain }, "hopcount_limit = 3")).status, 0);
});

Deno.test("message_size_limit rejects an oversized message with nothing queued", async () => {
  const r = await run({ text: "Subject: x\n\n" + "y".repeat(5000) }, "message_size_limit = 2000");
  assertEquals(r.status, CleanupStat.SIZE);
  assertEquals(r.reason, "5.3.4 message file too big");
  assertEquals(r.file, null);
  assertEquals(r.log.at(-1), "warning: ABC123: queue file size limit exceeded");
});

Deno.test("header_size_limit truncates an over-long header at exactly that many bytes", async () => {
  const cont = Array.from({ length: 50 }, () => "\t" + "z".repeat(50)).join("\n");
  const r = await run({ text: `X-Long: a\n${cont}\n${plain}` }, "header_size_limit = 500");
  const start = r.lines.indexOf("X-Long: a");
  const end = r.lines.indexOf("Subject: hi");
  assertEquals(r.lines.slice(start, end).join("\n").length, 500);
});

Deno.test("a stray CR in content becomes a space; NUL bytes pass through", async () => {
  const r = await run({ text: "Subject: a\rb\n\nx\0y\rz" });
  assertEquals(r.lines[0], "Subject: a b");
  assert(r.lines.includes("x\0y z"));
});

Deno.test("a message without headers gets the missing headers and an empty separator line", async () => {
  const r = await run({ text: "just body\nmore" });
  assertEquals(r.lines.slice(2), ["From: alice@example.com", "", "just body", "more"]);
});

Deno.test("an unexpected record type is an internal protocol error and nothing is queued", async () => {
  const r = await run([
    rec("T", "1 0"),
    rec("S", "a@b"),
    rec("Q", "?"),
    rec("M"),
    rec("X"),
    rec("E"),
  ]);
  assertEquals(r.status, CleanupStat.BAD);
  assertEquals(r.file, null);
  assertStringIncludes(r.log[0], "warning: ABC123: unexpected record type 81 in envelope");
});

Deno.test("a truncated record stream is an error and nothing is queued", async () => {
  const r = await run([rec("T", "1 0"), rec("S", "a@b"), rec("R", "c@d"), rec("M"), rec("N", "x")]);
  assertEquals(r.status, CleanupStat.BAD);
  assertEquals(r.file, null);
});

Deno.test("a message without recipients is refused", async () => {
  const r = await run({ recipients: [], text: plain });
  assertEquals(r.status, CleanupStat.RCPT);
  assertEquals(r.file, null);
});

Deno.test("past mime_nesting_limit the MIME structure is no longer followed, and not rejected", async () => {
  const text = "Subject: m\nContent-Type: multipart/mixed; boundary=a\n\n--a\n" +
    "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nleaf\n--b--\n--a--";
  const seen: string[] = [];
  const spy = (l: string) => (seen.push(l), Promise.resolve(undefined));
  const r = await run({ text }, "mime_nesting_limit = 1", {
    mimeHeaderChecks: spy,
    bodyChecks: spy,
  });
  assertEquals(r.status, 0);
  // The inner part's header is body text once the limit is passed.
  assert(seen.includes("Content-Type: text/plain"));
  const deep = await run({ text }, "", {});
  assertEquals(deep.status, 0);
});

Deno.test("strict_8bitmime_body rejects 8-bit text in a 7bit body; the default accepts it", async () => {
  const text = "Subject: x\n\ncaf\u00e9";
  assertEquals((await run({ text })).status, 0);
  const r = await run({ text }, "strict_8bitmime_body = yes");
  assertEquals(r.status, CleanupStat.CONT);
  assertStringIncludes(r.log.join("\n"), "mime-error improper use of 8-bit data in message body");
});

Deno.test("strict_7bit_headers rejects 8-bit header text", async () => {
  const r = await run({ text: "Subject: caf\u00e9\n\nb" }, "strict_7bit_headers = yes");
  assertEquals(r.status, CleanupStat.CONT);
});

Deno.test("strict_mime_encoding_domain rejects a base64 multipart", async () => {
  const text =
    "Content-Type: multipart/mixed; boundary=q\nContent-Transfer-Encoding: base64\n\n--q\n\nx\n--q--";
  assertEquals((await run({ text })).status, 0);
  const r = await run({ text }, "strict_mime_encoding_domain = yes");
  assertEquals(r.status, CleanupStat.CONT);
});

Deno.test("8-bit Content-Transfer-Encoding adds encoding=8bit after the content", async () => {
  const r = await run({ text: "Content-Transfer-Encoding: 8bit\n\nx" });
  const x = r.records.findIndex((v) => v.type === "X");
  assertEquals(r.records[x + 1], { type: "A", text: "encoding=8bit" });
});

Deno.test("content_filter is written into the envelope", async () => {
  const r = await run({ text: plain }, "content_filter = smtp:[127.0.0.1]:10025");
  assertEquals(r.records.find((v) => v.type === "L")?.text, "smtp:[127.0.0.1]:10025");
});

Deno.test("the size record holds data size, offset, recipient count and DSN flags", async () => {
  const r = await run({ text: plain, envelope: [rec("A", "notify_flags=10")] });
  const size = r.records[0].text.trim().split(/\s+/).map(Number);
  const x = r.records.findIndex((v) => v.type === "X");
  assertEquals(size[2], 1);
  assertEquals(size[3], 20);
  assert(size[0] > 0 && size[1] > 0 && x > 0);
});

Deno.test("SMTPUTF8 autodetection sets the size record's flags as the reference does", async () => {
  const auto = 0b110010 | (1 << 9);
  const flags = async (m: Parameters<typeof run>[0]) =>
    Number((await run(m, "", {}, auto)).records[0].text.trim().split(/\s+/)[5]);
  assertEquals(await flags({ sender: "j\u00f6rg@example.org", text: plain }), 5);
  assertEquals(await flags({ recipients: ["j\u00f6rg@example.org"], text: plain }), 1);
  assertEquals(await flags({ text: "X-Foo: \u00fc\n\nx" }), 3);
  assertEquals(await flags({ text: "Subject: a\n\nbody \u00fc" }), 0);
  assertEquals(await flags({ fullname: "J\u00f6rg", text: "Subject: a\n\nb" }), 0);
  // Without the autodetect request nothing is set.
  const r = await run({ text: "X-Foo: \u00fc\n\nx" });
  assertEquals(Number(r.records[0].text.trim().split(/\s+/)[5]), 0);
});

Deno.test("unescapeBytes() undoes C-like escapes of message_*_characters", () => {
  assertEquals(unescapeBytes("\\0\\t\\r\\n\\\\x\\101\\007"), [0, 9, 13, 10, 92, 120, 65, 7]);
});

Deno.test("message_reject_characters refuses the message; message_strip_characters removes bytes", async () => {
  const r = await run({ text: "Subject: x\n\nok\nbad\0line" }, "message_reject_characters = \\0");
  assertEquals(r.status, CleanupStat.CONT);
  assertEquals(r.reason, "5.7.1 disallowed character");
  assertStringIncludes(r.log.join("\n"), "ABC123: reject: content bad from local;");
  const s = await run({ text: "Subject: x\n\nta\tb" }, "message_strip_characters = \\t");
  assert(s.lines.includes("tab"));
});

Deno.test("remote_header_rewrite_domain: a remote client's headers get that domain and the missing headers", async () => {
  const r = await run(
    { rewriteContext: "remote", recipients: ["bob"], text: "To: bob\n\nb" },
    "remote_header_rewrite_domain = remote.example",
  );
  assertEquals(r.lines[0], "To: bob@remote.example");
  assert(r.lines.some((l) => l.startsWith("Message-Id:")));
  // The envelope is rewritten in the local context all the same.
  assertEquals(r.rcpts, ["bob@example.com"]);
});
