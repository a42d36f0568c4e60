// qmqpd under a real master: a QMQP client delivers messages into the
// queue (checked with postcat), malformed and oversized netstrings and
// messages without recipients are refused with Postfix's replies and log
// lines, and a client off qmqpd_authorized_clients is turned away.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { freePort, Instance, waitFor } from "../master/instance.ts";
import { runProgram } from "../../run.ts";
import { encodeNetstring } from "../../../daemons/qmqpd/netstring.ts";
import { qmailVerp, qmqpReceived, statusReply } from "../../../daemons/qmqpd/mod.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A QMQP packet: the message, the sender, the recipients. */
function packet(message: string, sender: string, recipients: string[]): Uint8Array {
  return encodeNetstring(concat(
    encodeNetstring(message),
    encodeNetstring(sender),
    ...recipients.map((r) => encodeNetstring(r)),
  ));
}

/** Sends raw bytes, half-closes, and returns the reply netstring's text ("" when none). */
async function qmqp(port: number, data: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(data).catch(() => 0);
    await conn.closeWrite().catch(() => {});
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
    const m = /^(\d+):([\s\S]*),$/.exec(text);
    return m ? m[2] : text;
  } finally {
    conn.close();
  }
}

async function postcat(inst: Instance, id: string): Promise<string> {
  const r = await runProgram("postcat", ["-c", inst.dir, "-q", id]);
  return r.stdout;
}

Deno.test({
  ...opts,
  name: "qmqpd queues QMQP messages through cleanup and refuses bad packets as Postfix does",
  async fn() {
    const port = freePort();
    const closed = freePort();
    const slow = freePort();
    const broken = freePort();
    const inst = await Instance.create(
      `127.0.0.1:${port} inet n - n - - qmqpd\n` +
        `127.0.0.1:${closed} inet n - n - - qmqpd -o qmqpd_authorized_clients=10.0.0.0/8 ` +
        `-o qmqpd_client_port_logging=yes\n` +
        `127.0.0.1:${slow} inet n - n - - qmqpd -o qmqpd_timeout=1s\n` +
        `127.0.0.1:${broken} inet n - n - - qmqpd ` +
        `-o qmqpd_authorized_clients=hash:/nonexistent/table\n` +
        `cleanup unix n - n - 0 cleanup\n` +
        `rewrite unix - - n - - trivial-rewrite\n`,
      "myhostname = mx.example.com\nmydestination = $myhostname\nhash_queue_names =\n" +
        "mail_name = Postfix\ncompatibility_level = 3.6\nqmqpd_authorized_clients = 127.0.0.1\n" +
        "qmqpd_error_delay = 0\nmessage_size_limit = 2000\n",
    );
    try {
      const started = await inst.postfix("start");
      assertEquals(started.code, 0, started.stderr);

      // One recipient: the Received: header names it.
      const one = await qmqp(
        port,
        packet("Subject: hi\nFrom: a@example.org\n\nbody line\nlast", "a@example.org", [
          "u@mx.example.com",
        ]),
      );
      assertMatch(one, /^KOk: queued as [0-9A-Za-z]+$/, inst.readLog());
      const id = one.slice("KOk: queued as ".length);
      const text = await postcat(inst, id);
      assertStringIncludes(text, "sender: a@example.org");
      assertStringIncludes(text, "recipient: u@mx.example.com");
      assertStringIncludes(text, "named_attribute: log_protocol_name=QMQP");
      assertStringIncludes(text, "named_attribute: client_address=127.0.0.1");
      assertStringIncludes(
        text,
        `Received: from localhost (localhost [127.0.0.1])\n\tby mx.example.com (Postfix) with QMQP id ${id}\n\tfor <u@mx.example.com>; `,
      );
      assertStringIncludes(text, "\nbody line\nlast\n");

      // Two recipients and a qmail VERP sender.
      const two = await qmqp(
        port,
        packet("Subject: two\n\nx\n", "list-@example.com-@[]", ["u@mx.example.com", "v@x.org"]),
      );
      assert(two.startsWith("KOk: queued as "), two);
      const text2 = await postcat(inst, two.slice("KOk: queued as ".length));
      assertStringIncludes(text2, "sender: list@example.com");
      assertStringIncludes(text2, "verp_delimiters: -=");
      assertStringIncludes(text2, "recipient: v@x.org");
      assertStringIncludes(text2, "\tby mx.example.com (Postfix) with QMQP\n\tid ");

      // Malformed and oversized netstrings, no recipients.
      assertEquals(
        await qmqp(port, enc.encode("abc")),
        "Dnetstring format error while receiving QMQP packet header",
      );
      assertEquals(
        await qmqp(port, enc.encode("10:5:hello,xx;")),
        "Dnetstring format error while receiving sender address",
      );
      assertEquals(
        await qmqp(port, packet("x".repeat(3000), "a@b", ["u@mx.example.com"])),
        "Dnetstring length exceeds storage limit while receiving message content",
      );
      assertEquals(
        await qmqp(port, packet("Subject: none\n\nx\n", "a@b", [])),
        "DError: no recipients specified",
      );
      assertEquals(await qmqp(port, enc.encode("100:50:hello")), "");

      // Not on qmqpd_authorized_clients.
      const refused = await qmqp(closed, packet("x\n", "a@b", ["u@mx.example.com"]));
      assertMatch(
        refused,
        /^DError: localhost\[127\.0\.0\.1\]:\d+ is not authorized to use this service$/,
      );

      // A client list that cannot be searched: try again later.
      assertEquals(
        await qmqp(broken, packet("x\n", "a@b", ["u@mx.example.com"])),
        "ZError: server configuration error",
      );

      // qmqpd_timeout: a client that stops sending is dropped.
      const stalled = await Deno.connect({ hostname: "127.0.0.1", port: slow });
      await stalled.write(enc.encode("100:50:hello"));
      const gone = await stalled.read(new Uint8Array(10)).catch(() => null);
      assertEquals(gone, null);
      stalled.close();
      assertStringIncludes(
        await waitFor(() =>
          inst.readLog().includes("read/write timeout") && inst.readLog()
        ) as string,
        ": localhost[127.0.0.1]: read/write timeout while receiving message content",
      );

      const log = await waitFor(() =>
        inst.readLog().includes("lost connection while receiving message content") &&
        inst.readLog()
      ) as string;
      assertStringIncludes(log, "postfix/qmqpd[");
      assertStringIncludes(log, "connect from localhost[127.0.0.1]");
      assertStringIncludes(log, `${id}: client=localhost[127.0.0.1]`);
      assertStringIncludes(log, "disconnect from localhost[127.0.0.1]");
      assertMatch(
        log,
        /: [0-9A-Za-z]+: localhost\[127\.0\.0\.1\]: netstring format error while receiving QMQP packet header/,
      );
      assertMatch(
        log,
        /warning: [0-9A-Za-z]+: localhost\[127\.0\.0\.1\]: Error: no recipients specified/,
      );
      assertMatch(log, /connect from localhost\[127\.0\.0\.1\]:\d+/);
    } finally {
      await inst.destroy();
    }
  },
});

Deno.test("qmqpd's Received: header, VERP convention and replies follow Postfix", () => {
  const client = { name: "c.example", addr: "2001:db8::1", port: "1", namaddr: "" };
  const st = { myhostname: "mx", mailName: "Postfix" };
  const when = new Date();
  assertEquals(qmqpReceived(client, st, "ID", ['"a b"@x'], when).slice(0, 2), [
    "Received: from c.example (c.example [IPv6:2001:db8::1])",
    "\tby mx (Postfix) with QMQP id ID",
  ]);
  assertStringIncludes(qmqpReceived(client, st, "ID", ['"a b"@x'], when)[2], '<"\\"a b\\""@x>');
  assertEquals(qmailVerp("a-@[]"), { sender: "a-@[]" });
  assertEquals(qmailVerp("x-@y-@[]"), { sender: "x@y", verp: "-=" });
  assertEquals(statusReply(1 << 2, "", "Q"), { status: "D", text: "Error: message too large" });
  assertEquals(statusReply(1 << 3, "4.7.1 later", "Q"), {
    status: "Z",
    text: "Error: 4.7.1 later",
  });
  assertEquals(statusReply(0, "", "Q"), { status: "K", text: "Ok: queued as Q" });
});
