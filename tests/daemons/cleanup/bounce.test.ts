// A locally submitted message that cleanup refuses for good (here a
// header_checks REJECT) is bounced by cleanup itself, as Postfix's cleanup
// does for pickup's CLEANUP_FLAG_BOUNCE: each recipient logged bounced with
// relay=none, a non-delivery notice to the sender carrying the whole
// original, and the maildrop file gone without a pickup warning.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { readOriginal } from "../../../daemons/bounce/notify.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { parseReport } from "../bounce/mime_check.ts";

const launcher = `${projectRoot}tests/daemons/qmgr/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

const masterCf = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       -       discard
`;

function listFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

Deno.test("cleanup bounces a locally submitted message it rejects, with the whole original", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const inst = await Instance.create(
    masterCf,
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "header_checks = regexp:$dir/header_checks",
      "always_bcc = archive@example.com",
      // The notice stays in the deferred queue, where the test reads it.
      "default_transport = discard:kept",
      "defer_transports = discard",
      "hash_queue_names =",
    ].join("\n"),
  );
  Deno.writeTextFileSync(`${inst.dir}/header_checks`, "/^Subject: forbidden/ REJECT go away\n");
  const mainCf = Deno.readTextFileSync(`${inst.dir}/main.cf`).replace("$dir", inst.dir);
  Deno.writeTextFileSync(`${inst.dir}/main.cf`, mainCf);
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram("sendmail", [
      "-f",
      "someone@sender.example",
      "rcpt@remote.example",
    ], {
      stdin: "From: someone@sender.example\nSubject: forbidden fruit\n\nThe body text.\n",
      env: { MAIL_CONFIG: inst.dir },
    });
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const notice = await waitFor(
      () =>
        /postfix\/bounce\[\d+\]: (\w+): sender non-delivery notification: (\w+)/.exec(
          inst.readLog(),
        ),
      45_000,
    );
    const log = inst.readLog();
    assert(notice, "no non-delivery notice:\n" + log);
    const [, id, noticeId] = notice!;
    assertMatch(
      log,
      new RegExp(
        `postfix/cleanup\\[\\d+\\]: ${id}: reject: header Subject: forbidden fruit from local; ` +
          `from=<someone@sender.example> to=<rcpt@remote.example>: 5.7.1 go away`,
      ),
    );
    // Every recipient, the automatic BCC included, as the reference logs them.
    for (const rcpt of ["rcpt@remote.example", "archive@example.com"]) {
      assertMatch(
        log,
        new RegExp(
          `postfix/cleanup\\[\\d+\\]: ${id}: to=<${rcpt}>, relay=none, delay=[\\d.]+, ` +
            `delays=[\\d.]+/0/0/0, dsn=5\\.7\\.1, status=bounced \\(go away\\)`,
        ),
      );
    }
    // pickup removes the maildrop file once cleanup has answered.
    assert(await waitFor(() => listFiles(`${inst.queue}/maildrop`).length === 0, 10_000));
    assert(!/pickup\[\d+\]: warning/.test(inst.readLog()), inst.readLog());
    // The refused message never entered the queue; its bounce log is gone too.
    assert(!listFiles(`${inst.queue}/incoming`).includes(id));
    assert(await waitFor(() => !listFiles(`${inst.queue}/bounce`).includes(id), 10_000));
    assert(
      await waitFor(() => listFiles(`${inst.queue}/deferred`).includes(noticeId), 20_000),
      "notice not deferred:\n" + inst.readLog(),
    );
    const path = `${inst.queue}/deferred/${noticeId}`;
    const msg = parseQueuedMessage(noticeId, Deno.readFileSync(path));
    assertEquals(msg.sender, "");
    assertEquals(msg.recipients.map((r) => r.address), ["someone@sender.example"]);
    const original = readOriginal(path)!;
    const report = await parseReport([...original.headers, "", ...original.body]);
    assertEquals(report.subject, "Undelivered Mail Returned to Sender");
    assertEquals(report.status[1]["Final-Recipient"], "rfc822; rcpt@remote.example");
    assertEquals(report.status[1]["Status"], "5.7.1");
    assertStringIncludes(report.returned, "Subject: forbidden fruit");
    assertStringIncludes(report.returned, "The body text.");
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});
