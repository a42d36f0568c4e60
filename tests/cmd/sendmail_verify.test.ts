// sendmail -bv and sendmail -v in a whole instance: the probe (-bv) is never
// delivered and the agents record what they would do; -v delivers and
// records each delivery; either way the trace service mails the "Mail
// Delivery Status Report" to the sender. The reports are compared with the
// reference's (tests/golden/bounce/reference-trace-*.txt, made by Postfix 3.7
// with the same transports: postcat -bh of the queued report).

import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";
import { waitFor } from "../daemons/master/instance.ts";
import { readOriginal } from "../../daemons/bounce/notify.ts";
import { parseQueuedMessage } from "../../daemons/qmgr/message.ts";
import { queueIds, startInstance } from "../daemons/verify/instance.ts";
import { normalizeReport } from "../daemons/bounce/report_normalize.ts";

const golden = new URL("../golden/bounce/", import.meta.url).pathname;

/** The report queued for the sender (held back in deferred), as header and body text. */
async function reportText(queue: string, noticeId: string): Promise<string> {
  assert(
    await waitFor(() => queueIds(`${queue}/deferred`).includes(noticeId), 20_000),
    `report ${noticeId} not deferred`,
  );
  const original = readOriginal(`${queue}/deferred/${noticeId}`)!;
  return [...original.headers, "", ...original.body].join("\n");
}

const sender = "someone@sender.example";
const rcpts = ["ok@remote.example", "bad@bad.example", "later@later.example"];

Deno.test(
  "sendmail -bv mails a delivery status report of what would happen, and delivers nothing",
  {
    sanitizeOps: false,
    sanitizeResources: false,
  },
  async () => {
    const inst = await startInstance();
    try {
      const sent = await runProgram("sendmail", ["-f", sender, "-bv", ...rcpts], {
        env: { MAIL_CONFIG: inst.dir },
      });
      assertEquals(sent.code, 0, sent.stderr);
      assertEquals(sent.stdout, `Mail Delivery Status Report will be mailed to <${sender}>.\n`);
      await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
      const line = await waitFor(
        () => /: sender delivery status notification: (\w+)/.exec(inst.readLog()),
        30_000,
      );
      const log = inst.readLog();
      assert(line, "no report:\n" + log);
      assertStringIncludes(log, "dsn=2.0.0, status=deliverable (delivered nowhere)");
      assertStringIncludes(log, "dsn=5.1.1, status=undeliverable (no such user here)");
      assertStringIncludes(log, "dsn=4.4.1, status=undeliverable (try again later)");
      assert(!/status=(sent|bounced|deferred) \((delivered|no such|try)/.test(log), log);
      assert(!log.includes("non-delivery notification"), log);
      const probeId = /(\w+): from=<someone@sender.example>/.exec(log)![1];
      assert(await waitFor(() => inst.readLog().includes(`${probeId}: removed`), 10_000));
      const ours = await reportText(inst.queue, line![1]);
      const reference = Deno.readTextFileSync(`${golden}reference-trace-bv.txt`);
      assertEquals(normalizeReport(ours), normalizeReport(reference));
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
    }
  },
);

Deno.test(
  "sendmail -v delivers and mails a report of each delivery; the record is killed once reported",
  {
    sanitizeOps: false,
    sanitizeResources: false,
  },
  async () => {
    const inst = await startInstance();
    try {
      const sent = await runProgram("sendmail", ["-v", "-f", sender, ...rcpts], {
        stdin: `From: ${sender}\nTo: ok@remote.example\nSubject: verbose\n\nBody.\n`,
        env: { MAIL_CONFIG: inst.dir },
      });
      assertEquals(sent.code, 0, sent.stderr);
      assertStringIncludes(
        sent.stdout,
        `Mail Delivery Status Report will be mailed to <${sender}>.`,
      );
      await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
      const line = await waitFor(
        () => /: sender delivery status notification: (\w+)/.exec(inst.readLog()),
        30_000,
      );
      assert(line, "no report:\n" + inst.readLog());
      assert(
        await waitFor(() => inst.readLog().includes("sender non-delivery notification"), 10_000),
        inst.readLog(),
      );
      const log = inst.readLog();
      assertStringIncludes(log, "dsn=2.0.0, status=sent (delivered nowhere)");
      assertStringIncludes(log, "dsn=5.1.1, status=bounced (no such user here)");
      assertStringIncludes(log, "dsn=4.4.1, status=deferred (try again later)");
      const ours = await reportText(inst.queue, line![1]);
      const reference = Deno.readTextFileSync(`${golden}reference-trace-v.txt`);
      assertEquals(normalizeReport(ours), normalizeReport(reference));
      // The message waits in deferred for later@later.example; its trace_flags record is killed.
      const msgId = /(\w+): from=<someone@sender.example>/.exec(log)![1];
      assert(await waitFor(() => queueIds(`${inst.queue}/deferred`).includes(msgId), 10_000));
      const data = Deno.readFileSync(`${inst.queue}/deferred/${msgId}`);
      const q = parseQueuedMessage(msgId, data);
      assertEquals(q.traceFlags, 0);
      assertEquals(q.recipients.map((r) => r.address), ["later@later.example"]);
      assertStringIncludes(new TextDecoder().decode(data), "trace_flags=1024");
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
    }
  },
);
