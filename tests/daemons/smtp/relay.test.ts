// End to end: SMTP into Posthorn's smtpd, through the queue, out through
// the smtp agent under the master to the reference's smtp-sink (or a
// scripted server when smtp-sink is missing).

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { freePort, waitFor } from "../master/instance.ts";
import { session } from "../smtpd/helpers.ts";
import { fakeServer } from "./helpers.ts";
import { startRelayInstance } from "./relay_instance.ts";

Deno.test({
  name: "mail received by smtpd is relayed by smtp to the relayhost and logged status=sent",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sink = await fakeServer();
    const { inst, port } = await startRelayInstance(`[127.0.0.1]:${sink.port}`);
    try {
      const r = await session(port, [
        "EHLO client.example",
        "MAIL FROM:<someone@sender.example>",
        "RCPT TO:<a@far.example>",
        "RCPT TO:<b@far.example>",
        "DATA",
        "Subject: relayed\r\n\r\nhello over smtp\r\n.",
        "QUIT",
      ]);
      assert(r[6].startsWith("250 2.0.0 Ok: queued as "), r.join(" / ") + inst.readLog());
      const id = r[6].slice("250 2.0.0 Ok: queued as ".length);
      const done = await waitFor(() => inst.readLog().includes(`${id}: removed`), 45_000);
      const log = inst.readLog();
      assert(done, "not relayed:\n" + log);
      assertStringIncludes(log, `postfix/smtp[`);
      assertStringIncludes(
        log,
        `${id}: to=<a@far.example>, relay=127.0.0.1[127.0.0.1]:${sink.port}, delay=`,
      );
      assertStringIncludes(log, "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as Q1)");
      assertEquals(sink.sessions.length, 1);
      assertStringIncludes(sink.sessions[0].messages[0], "hello over smtp");
      assertStringIncludes(sink.sessions[0].messages[0], "Subject: relayed");
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
      await sink.close();
    }
  },
});

const haveSink = (() => {
  try {
    return Deno.statSync("/usr/sbin/smtp-sink").isFile &&
      Deno.statSync("/usr/sbin/smtp-source").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "smtp-source into smtpd, relayed by smtp to smtp-sink: every message sent",
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: !haveSink,
  async fn() {
    const sinkPort = freePort();
    const sink = new Deno.Command("/usr/sbin/smtp-sink", {
      args: [...(Deno.uid() === 0 ? ["-u", "root"] : []), `127.0.0.1:${sinkPort}`, "100"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const { inst, port } = await startRelayInstance(`[127.0.0.1]:${sinkPort}`);
    try {
      const src = await new Deno.Command("/usr/sbin/smtp-source", {
        args: [
          "-m",
          "20",
          "-s",
          "5",
          "-f",
          "from@sender.example",
          "-t",
          "to@far.example",
          `127.0.0.1:${port}`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(src.code, 0, new TextDecoder().decode(src.stderr));
      const sent = () => (inst.readLog().match(/status=sent \(250 2\.0\.0 Ok\)/g) ?? []).length;
      await waitFor(() => sent() >= 20, 60_000);
      assertEquals(sent(), 20, inst.readLog());
      assertStringIncludes(inst.readLog(), `relay=127.0.0.1[127.0.0.1]:${sinkPort}`);
    } finally {
      await inst.destroy();
      sink.kill();
      await sink.status;
    }
  },
});

Deno.test({
  name:
    "messages queued together for one relayhost share cached sessions (scache), logged conn_use=N",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sink = await fakeServer();
    const { inst, port } = await startRelayInstance(`[127.0.0.1]:${sink.port}`, [
      // One delivery at a time, so that each one follows the last.
      "default_destination_concurrency_limit = 1",
      "initial_destination_concurrency = 1",
    ]);
    const count = 8;
    try {
      const commands = ["EHLO client.example"];
      for (let i = 0; i < count; i++) {
        commands.push(
          "MAIL FROM:<someone@sender.example>",
          `RCPT TO:<r${i}@far.example>`,
          "DATA",
          `Subject: m${i}\r\n\r\nmessage ${i}\r\n.`,
        );
      }
      commands.push("QUIT");
      await session(port, commands);
      const sent = () => (inst.readLog().match(/status=sent/g) ?? []).length;
      await waitFor(() => sent() >= count, 60_000);
      const log = inst.readLog();
      assertEquals(sent(), count, log);
      const messages = sink.sessions.reduce((n, s) => n + s.messages.length, 0);
      assertEquals(messages, count);
      assert(sink.sessions.length < count, `${sink.sessions.length} sessions:\n${log}`);
      assert(sink.sessions.some((s) => s.lines.includes("RSET")), log);
      assert(
        new RegExp(
          `relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${sink.port}, conn_use=[2-9], delay=`,
        )
          .test(log),
        log,
      );
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
      await sink.close();
    }
  },
});
