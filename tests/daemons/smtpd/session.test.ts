// smtpd over real TCP sessions: messages reaching the queue (DSN parameters
// read back with lib/queue), BDAT, pipelining, and bad input (long lines,
// binary garbage, a client gone mid-DATA, a silent client, oversized
// messages, 10k recipients, pipelining before the greeting, error limits).

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { Client, incoming, type Instance, logHas, session, start, stop } from "./helpers.ts";

const dec = new TextDecoder();
const opts = { sanitizeResources: false, sanitizeOps: false };

function records(inst: Instance, id: string): { type: string; text: string }[] {
  const data = readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`);
  return decodeRecords(data).map((r) => ({ type: r.type, text: dec.decode(r.data) }));
}

Deno.test({
  ...opts,
  name: "smtpd sessions with the default restrictions",
  async fn(t) {
    const inst = await start(
      "message_size_limit = 20000\nsmtpd_timeout = 1s\nsmtpd_recipient_limit = 10000",
    );
    try {
      await t.step("DSN parameters reach the queue file", async () => {
        const r = await session(inst.port, [
          "EHLO client.example",
          "MAIL FROM:<a@example.org> RET=HDRS ENVID=abc+2Bd BODY=8BITMIME",
          "RCPT TO:<u@mx.example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;U@mx.example.com",
          "RCPT TO:<v@mx.example.com>",
          "DATA",
          "Subject: dsn\r\n\r\nbody\r\n.",
          "QUIT",
        ]);
        const m = /queued as (\w+)/.exec(r[6]);
        assert(m, r[6]);
        const recs = records(inst, m[1]);
        const attrs = recs.filter((x) => x.type === "A").map((x) => x.text);
        assert(attrs.includes("envelope_id=abc+d"), attrs.join(","));
        assert(attrs.includes("ret_flags=2"));
        assert(attrs.includes("notify_flags=10"));
        assert(attrs.includes("dsn_orig_rcpt=rfc822;U@mx.example.com"));
        assert(attrs.includes("encoding=8bit"));
        assert(attrs.includes("client_address=127.0.0.1"));
        assert(attrs.includes("helo_name=client.example"));
        assertEquals(recs.filter((x) => x.type === "R").map((x) => x.text), [
          "u@mx.example.com",
          "v@mx.example.com",
        ]);
        const lines = recs.filter((x) => x.type === "N").map((x) => x.text);
        assert(
          lines[0].startsWith("Received: from client.example (localhost [127.0.0.1])"),
          lines[0],
        );
        assert(lines.includes("Subject: dsn"));
        const log = await logHas(
          inst,
          "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6",
        );
        assertStringIncludes(log, `${m[1]}: client=localhost[127.0.0.1]`);
      });

      await t.step("a pipelined transaction gets every reply in order", async () => {
        const c = await Client.connect(inst.port);
        await c.reply();
        await c.cmd("EHLO x");
        await c.send(
          "MAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example.com>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n",
        );
        assertEquals(await c.reply(), "250 2.1.0 Ok");
        assertEquals(await c.reply(), "250 2.1.5 Ok");
        assertEquals(await c.reply(), "454 4.7.1 <x@y.example>: Relay access denied");
        assertEquals(await c.reply(), "354 End data with <CR><LF>.<CR><LF>");
        await c.send("Subject: p\r\n\r\n.\r\nQUIT\r\n");
        assert((await c.reply()).startsWith("250 2.0.0 Ok: queued as "));
        assertEquals(await c.reply(), "221 2.0.0 Bye");
        c.close();
      });

      await t.step("BDAT chunks are queued without dot-unstuffing", async () => {
        const c = await Client.connect(inst.port);
        await c.reply();
        await c.cmd("EHLO x");
        await c.send(
          "MAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example.com>\r\nBDAT 21\r\nSubject: b\r\n\r\n..dot\r\n",
        );
        assertEquals(await c.reply(), "250 2.1.0 Ok");
        assertEquals(await c.reply(), "250 2.1.5 Ok");
        assertEquals(await c.reply(), "250 2.0.0 Ok: 21 bytes");
        await c.send("BDAT 5 LAST\r\nend\r\n");
        const last = await c.reply();
        const m = /^250 2\.0\.0 Ok: 26 bytes queued as (\w+)$/.exec(last);
        assert(m, last);
        const lines = records(inst, m[1]).filter((x) => x.type === "N").map((x) => x.text);
        assert(lines.includes("..dot") && lines.includes("end"), lines.join("|"));
        assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
        c.close();
      });

      await t.step("a command line over 2 KB is refused and the session goes on", async () => {
        const r = await session(inst.port, ["X".repeat(5000), "NOOP"]);
        assertEquals(r.slice(1), ["500 5.5.2 Error: command not recognized", "250 2.0.0 Ok"]);
      });

      await t.step(
        "binary garbage gets bad UTF-8 syntax, a non-SMTP command is dropped",
        async () => {
          const c = await Client.connect(inst.port);
          await c.reply();
          await c.send(new Uint8Array([0x41, 0xff, 0xfe, 0x80, 13, 10]));
          assertEquals(await c.reply(), "500 5.5.2 Error: bad UTF-8 syntax");
          assertEquals(
            await c.cmd("GET / HTTP/1.0"),
            "221 2.7.0 Error: I can break rules, too. Goodbye.",
          );
          assertEquals(await c.reply(), "<EOF>");
          c.close();
        },
      );

      await t.step("a client gone mid-DATA leaves nothing queued", async () => {
        const before = incoming(inst).length;
        const c = await Client.connect(inst.port);
        await c.reply();
        await c.cmd("EHLO x");
        await c.cmd("MAIL FROM:<a@b>");
        await c.cmd("RCPT TO:<u@mx.example.com>");
        assertEquals(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
        await c.send("Subject: half\r\n\r\npart of a message\r\n");
        c.close();
        const log = await logHas(inst, /lost connection after DATA \(\d+ bytes\) from localhost/);
        assert(/lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]/.test(log));
        // cleanup removes the dropped stream's file once it sees the connection end.
        for (let i = 0; i < 100 && incoming(inst).length !== before; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assertEquals(incoming(inst).length, before);
      });

      await t.step("a client that never speaks is dropped after smtpd_timeout", async () => {
        const c = await Client.connect(inst.port);
        await c.reply();
        assertEquals(await c.reply(), "421 4.4.2 mx.example.com Error: timeout exceeded");
        c.close();
        assertStringIncludes(
          await logHas(inst, "timeout after CONNECT"),
          "timeout after CONNECT from localhost[127.0.0.1]",
        );
      });

      await t.step("a message over message_size_limit is refused with 552", async () => {
        const before = incoming(inst).length;
        const r = await session(inst.port, [
          "EHLO x",
          "MAIL FROM:<a@b> SIZE=30000",
          "MAIL FROM:<a@b>",
          "RCPT TO:<u@mx.example.com>",
          "DATA",
          ("x".repeat(998) + "\r\n").repeat(30) + ".",
          "NOOP",
        ]);
        assertEquals(r[2], "552 5.3.4 Message size exceeds fixed limit");
        assertEquals(r[6], "552 5.3.4 Message size exceeds fixed limit");
        assertEquals(r[7], "250 2.0.0 Ok");
        // The stream opened at RCPT is dropped: cleanup removes its file once it sees the
        // connection end, which may come just after smtpd's reply.
        for (let i = 0; i < 100 && incoming(inst).length !== before; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assertEquals(incoming(inst).length, before);
      });

      await t.step("10k pipelined RCPTs each get a reply", async () => {
        const c = await Client.connect(inst.port);
        await c.reply();
        await c.cmd("EHLO x");
        await c.cmd("MAIL FROM:<a@b>");
        let batch = "";
        for (let i = 0; i < 10001; i++) batch += `RCPT TO:<u${i}@mx.example.com>\r\n`;
        await c.send(batch);
        let ok = 0;
        let last = "";
        for (let i = 0; i < 10001; i++) {
          last = await c.reply();
          if (last === "250 2.1.5 Ok") ok++;
        }
        assertEquals(ok, 10000);
        assertEquals(last, "452 4.5.3 Error: too many recipients");
        assertEquals(await c.cmd("RSET"), "250 2.0.0 Ok");
        c.close();
      });

      await t.step("too many errors end the session with 421", async () => {
        const r = await session(inst.port, new Array(21).fill("FOO"));
        assertEquals(r[20], "500 5.5.2 Error: command not recognized");
        assertEquals(r[21], "421 4.7.0 mx.example.com Error: too many errors");
        assertStringIncludes(
          await logHas(inst, "too many errors after UNKNOWN"),
          "too many errors after UNKNOWN from localhost",
        );
      });
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  ...opts,
  name:
    "smtpd_forbid_unauth_pipelining drops a client that talks before the greeting or pipelines after EHLO",
  async fn() {
    const inst = await start("smtpd_forbid_unauth_pipelining = yes");
    try {
      // Input before the greeting is caught when it is there as the greeting
      // is due; otherwise the EHLO it pipelines with is.
      const c = await Client.connect(inst.port);
      await c.send("EHLO x\r\nMAIL FROM:<a@b>\r\n");
      const replies: string[] = [];
      for (let r = await c.reply(); r !== "<EOF>"; r = await c.reply()) replies.push(r);
      assertEquals(replies.at(-1), "554 5.5.0 Error: SMTP protocol synchronization");
      c.close();
      const d = await Client.connect(inst.port);
      await d.reply();
      await d.send("EHLO x\r\nMAIL FROM:<a@b>\r\n");
      assertEquals(await d.reply(), "554 5.5.0 Error: SMTP protocol synchronization");
      d.close();
      const log = await logHas(inst, "improper command pipelining after EHLO");
      assertStringIncludes(
        log,
        "improper command pipelining after EHLO from localhost[127.0.0.1]: MAIL FROM:<a@b>\\r\\n",
      );
      // A client that waits for each reply is served.
      const ok = await session(inst.port, ["EHLO x", "MAIL FROM:<a@b>", "QUIT"]);
      assertEquals(ok[2], "250 2.1.0 Ok");
    } finally {
      await stop(inst);
    }
  },
});
