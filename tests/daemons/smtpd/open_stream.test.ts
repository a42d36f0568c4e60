// The cleanup stream of a transaction, as the reference smtpd handles it:
// opened at the first accepted RCPT (queue id and `ID: client=` line from
// there on, so later reject lines carry the id), abandoned by RSET or QUIT
// without a trace; XVERP from an authorized client stored as a V record.

import { assert, assertEquals } from "../../assert.ts";
import { decodeRecords, RecordType } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { Client, incoming, logHas, maillog, start, stop } from "./helpers.ts";

const dec = new TextDecoder();

/** Everything in the queue tree that is a file (abandoned streams leave none). */
function queueFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ["incoming", "active", "deferred", "hold", "maildrop"]) {
    try {
      for (const e of Deno.readDirSync(`${dir}/${sub}`)) out.push(`${sub}/${e.name}`);
    } catch {
      // Not there.
    }
  }
  return out;
}

Deno.test({
  name: "the stream opens at the first accepted RCPT; RSET and QUIT abandon it without a trace",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start("relay_domains = ok.example\n");
    try {
      const c = await Client.connect(inst.port);
      await c.reply();
      await c.cmd("EHLO y");
      assertEquals(await c.cmd("MAIL FROM:<b@ok.example>"), "250 2.1.0 Ok");
      assertEquals(
        await c.cmd("RCPT TO:<bad@elsewhere.example>"),
        "454 4.7.1 <bad@elsewhere.example>: Relay access denied",
      );
      assertEquals(await c.cmd("RCPT TO:<u@ok.example>"), "250 2.1.5 Ok");
      let log = await logHas(inst, "client=localhost[127.0.0.1]");
      const id = /(\w+): client=localhost\[127\.0\.0\.1\]/.exec(log)?.[1];
      assert(id, log);
      assertEquals(
        await c.cmd("RCPT TO:<bad@elsewhere.example>"),
        "454 4.7.1 <bad@elsewhere.example>: Relay access denied",
      );
      assertEquals(await c.cmd("RSET"), "250 2.0.0 Ok");
      assertEquals(await c.cmd("MAIL FROM:<b@ok.example>"), "250 2.1.0 Ok");
      assertEquals(await c.cmd("RCPT TO:<v@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
      c.close();
      log = await logHas(inst, "commands=7/9");
      // smtpd's lines only (the helper's port probe left a connection of its own).
      const lines = log.split("\n").filter((l) => l.includes("smtpd["))
        .map((l) => l.replace(/^.*?smtpd\[\d+\]: /, "smtpd: "))
        .filter((l) => !/CONNECT from|commands=0$/.test(l));
      const second = lines.filter((l) => l.endsWith(": client=localhost[127.0.0.1]"))[1]
        ?.split(":")[1];
      assert(second && second !== id, lines.join("\n"));
      const rest = lines.filter((l) => !l.startsWith("smtpd: connect from")).map((l) =>
        l.replace(id, "ID1").replace(second.trim(), "ID2")
      );
      const tail = " from=<b@ok.example> to=<bad@elsewhere.example> proto=ESMTP helo=<y>";
      assertEquals(rest, [
        "smtpd: NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 454 4.7.1 " +
        "<bad@elsewhere.example>: Relay access denied;" + tail,
        "smtpd: ID1: client=localhost[127.0.0.1]",
        "smtpd: ID1: reject: RCPT from localhost[127.0.0.1]: 454 4.7.1 " +
        "<bad@elsewhere.example>: Relay access denied;" + tail,
        "smtpd: ID2: client=localhost[127.0.0.1]",
        "smtpd: disconnect from localhost[127.0.0.1] ehlo=1 mail=2 rcpt=2/4 rset=1 quit=1 " +
        "commands=7/9",
      ]);
      // Nothing is left in the queue. (The reference's cleanup logs nothing for
      // an abandoned stream; Posthorn's cleanup still warns "premature end of
      // input", which is cleanup's to change.)
      await new Promise((r) => setTimeout(r, 200));
      assertEquals(queueFiles(inst.layout.queueDirectory), []);
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  name:
    "XVERP from an authorized client is stored as the V record; a HOLD after the open still holds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "relay_domains = ok.example\nsmtpd_authorized_verp_clients = 127.0.0.1\n" +
        "smtpd_recipient_restrictions = check_recipient_access inline:{held@ok.example=HOLD}\n",
    );
    try {
      const c = await Client.connect(inst.port);
      await c.reply();
      const ehlo = await c.cmd("EHLO y");
      assert(ehlo.includes("250-ETRN\n250-XVERP\n"), ehlo);
      assertEquals(
        await c.cmd("MAIL FROM:<> XVERP"),
        "503 5.5.4 Error: XVERP requires non-null sender",
      );
      assertEquals(
        await c.cmd("MAIL FROM:<x@ok.example> XVERP=ab"),
        "501 5.5.4 Error: XVERP needs two characters from -=+",
      );
      assertEquals(await c.cmd("MAIL FROM:<x@ok.example> XVERP=-="), "250 2.1.0 Ok");
      assertEquals(await c.cmd("RCPT TO:<u@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("RCPT TO:<v@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
      const done = await c.cmd("Subject: t\r\n\r\nhi\r\n.");
      const id = /queued as (\w+)/.exec(done)?.[1];
      assert(id, done);
      const records = decodeRecords(
        readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`),
      );
      const envelope = records.slice(0, records.findIndex((r) => r.type === RecordType.MESG));
      const types = envelope.map((r) => r.type).join("");
      assertEquals(
        envelope.filter((r) => r.type === RecordType.VERP).map((r) => dec.decode(r.data)),
        [
          "-=",
        ],
      );
      // As the reference writes it: after the client attributes, before the recipients.
      assert(/S.*A.*V.*R.*R/.test(types), types);

      // A HOLD result at the second recipient: the message goes to hold.
      assertEquals(await c.cmd("MAIL FROM:<x@ok.example>"), "250 2.1.0 Ok");
      assertEquals(await c.cmd("RCPT TO:<u@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("RCPT TO:<held@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
      const held = /queued as (\w+)/.exec(await c.cmd("Subject: t\r\n\r\nhi\r\n."))?.[1];
      assert(held);
      await c.cmd("QUIT");
      c.close();
      const hold = [...Deno.readDirSync(`${inst.layout.queueDirectory}/hold`)].map((e) => e.name);
      assertEquals(hold, [held]);
      // One queue id from the first RCPT on: cleanup took the HOLD as an `f` record.
      assertEquals((maillog(inst).match(new RegExp(`${held}: client=`, "g")) ?? []).length, 1);
      assertEquals(maillog(inst).match(/: client=/g)?.length, 2);
      assertEquals(incoming(inst), [id]);
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  name: "with smtpd_delay_open_until_valid_rcpt = no the stream opens at MAIL",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "relay_domains = ok.example\nsmtpd_delay_open_until_valid_rcpt = no\n",
    );
    try {
      const c = await Client.connect(inst.port);
      await c.reply();
      await c.cmd("HELO y");
      assertEquals(await c.cmd("MAIL FROM:<b@ok.example>"), "250 2.1.0 Ok");
      const log = await logHas(inst, "client=localhost[127.0.0.1]");
      const id = /(\w+): client=localhost\[127\.0\.0\.1\]/.exec(log)?.[1];
      assert(id, log);
      assertEquals(
        await c.cmd("RCPT TO:<bad@elsewhere.example>"),
        "454 4.7.1 <bad@elsewhere.example>: Relay access denied",
      );
      assertEquals(await c.cmd("RCPT TO:<u@ok.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
      assertEquals(await c.cmd("Subject: t\r\n\r\nhi\r\n."), `250 2.0.0 Ok: queued as ${id}`);
      await c.cmd("QUIT");
      c.close();
      assertEquals(
        (await logHas(inst, `${id}: reject: RCPT`)).includes(
          `${id}: reject: RCPT from localhost[127.0.0.1]: 454 4.7.1 <bad@elsewhere.example>`,
        ),
        true,
      );
    } finally {
      await stop(inst);
    }
  },
});
