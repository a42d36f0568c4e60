// The smtp client against real servers: the reference's smtp-sink (SMTP
// and LMTP, forced soft and hard rejections) and Posthorn's own smtpd.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { freePort } from "../smtpd/helpers.ts";
import { deliver, opts } from "./helpers.ts";

const sinkPath = "/usr/sbin/smtp-sink";
const haveSink = (() => {
  try {
    return Deno.statSync(sinkPath).isFile;
  } catch {
    return false;
  }
})();

/** Starts smtp-sink with `flags` on a free port; resolves once it accepts connections. */
async function sink(flags: string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const port = freePort();
  const user = Deno.uid() === 0 ? ["-u", "root"] : [];
  const child = new Deno.Command(sinkPath, {
    args: [...user, ...flags, `127.0.0.1:${port}`, "100"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    port,
    stop: async () => {
      child.kill();
      await child.status;
    },
  };
}

Deno.test({
  name: "smtp delivers to smtp-sink with pipelining; status=sent with its reply",
  ...opts,
  ignore: !haveSink,
  fn: async () => {
    const s = await sink([]);
    try {
      const r = await deliver({
        nexthop: `[127.0.0.1]:${s.port}`,
        recipients: ["a@sink.example", "b@sink.example", "c@sink.example"],
      });
      assertEquals([...r.reply.results.values()], ["sent", "sent", "sent"]);
      assertStringIncludes(r.log, "dsn=2.0.0, status=sent (250 2.0.0 Ok)");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "smtp-sink's forced RCPT rejections: hard bounces, soft defers",
  ...opts,
  ignore: !haveSink,
  fn: async () => {
    const hard = await sink(["-f", "rcpt"]);
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${hard.port}` });
      assertEquals([...r.reply.results.values()], ["bounced"]);
      assertStringIncludes(r.log, "(in reply to RCPT TO command))");
      assertStringIncludes(r.log, "status=bounced (host 127.0.0.1[127.0.0.1] said: 5");
    } finally {
      await hard.stop();
    }
    const soft = await sink(["-r", "mail"]);
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${soft.port}` });
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(r.log, "(in reply to MAIL FROM command))");
    } finally {
      await soft.stop();
    }
  },
});

Deno.test({
  name: "lmtp delivers to smtp-sink -L",
  ...opts,
  ignore: !haveSink,
  fn: async () => {
    const s = await sink(["-L"]);
    try {
      const r = await deliver(
        { nexthop: `inet:127.0.0.1:${s.port}`, recipients: ["a@l.example", "b@l.example"] },
        "",
        "lmtp",
      );
      assertEquals([...r.reply.results.values()], ["sent", "sent"]);
    } finally {
      await s.stop();
    }
  },
});
