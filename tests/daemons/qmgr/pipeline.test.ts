// The whole delivery path under the master: sendmail → pickup → cleanup →
// qmgr → (trivial-rewrite) → error agent → bounce → a non-delivery notice
// queued through cleanup, checked with python3's email package.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
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
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
`;

function files(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) out.push(...files(`${dir}/${e.name}`).map((f) => `${e.name}/${f}`));
      else out.push(e.name);
    }
  } catch {
    // No such folder.
  }
  return out;
}

Deno.test("sendmail to an error transport comes back as a non-delivery notice", {
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
      "default_transport = error:5.7.1 remote delivery disabled",
      // The notice's recipient domain goes to a transport held back, so the
      // notice stays in the deferred queue where the test can read it.
      "transport_maps = inline:{sender.example=discard:kept}",
      "defer_transports = discard",
      "hash_queue_names =",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram(
      "sendmail",
      ["-f", "someone@sender.example", "rcpt@remote.example"],
      {
        stdin:
          "From: someone@sender.example\nTo: rcpt@remote.example\nSubject: hello\n\nBody text.\n",
        env: { MAIL_CONFIG: inst.dir },
      },
    );
    assertEquals(sent.code, 0, sent.stderr);
    // Wake pickup at once instead of waiting for the master's timer.
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const noticeLine = await waitFor(
      () => /: sender non-delivery notification: (\w+)/.exec(inst.readLog()),
      45_000,
    );
    const log = inst.readLog();
    assert(noticeLine, "no non-delivery notice was sent:\n" + log);
    assertStringIncludes(log, "(queue active)");
    assertStringIncludes(log, "to=<rcpt@remote.example>, relay=none, delay=");
    assertStringIncludes(log, "dsn=5.7.1, status=bounced (remote delivery disabled)");
    const noticeId = noticeLine![1];
    // The notice is deferred (its transport is held back), unchanged.
    const path = `${inst.queue}/deferred/${noticeId}`;
    assert(
      await waitFor(() => files(`${inst.queue}/deferred`).includes(noticeId), 20_000),
      "notice not deferred:\n" + inst.readLog(),
    );
    const msg = parseQueuedMessage(noticeId, Deno.readFileSync(path));
    assertEquals(msg.sender, "");
    assertEquals(msg.recipients.map((r) => r.address), ["someone@sender.example"]);
    const original = readOriginal(path)!;
    const report = await parseReport([...original.headers, "", ...original.body]);
    assertEquals(report.contentType, "multipart/report");
    assertEquals(report.reportType, "delivery-status");
    assertEquals(report.subject, "Undelivered Mail Returned to Sender");
    assertEquals(report.status[1]["Final-Recipient"], "rfc822; rcpt@remote.example");
    assertEquals(report.status[1]["Action"], "failed");
    assertEquals(report.status[1]["Status"], "5.7.1");
    assertEquals(report.status[1]["Diagnostic-Code"], "X-Postfix; remote delivery disabled");
    assertStringIncludes(report.returned, "Body text.");
    // The original message is gone from the queue once the notice is out.
    const original_id = /(\w+): from=<someone@sender.example>/.exec(log)?.[1] ?? "";
    assert(
      await waitFor(() => inst.readLog().includes(`${original_id}: removed`), 10_000),
      inst.readLog(),
    );
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});

Deno.test("mail the retry transport keeps deferring expires and goes back to the sender", {
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
      "default_transport = retry:4.4.1 try again later",
      // Tried once, then returned.
      "maximal_queue_lifetime = 0",
      "transport_maps = inline:{sender.example=discard:kept}",
      "defer_transports = discard",
      "hash_queue_names =",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram("sendmail", [
      "-f",
      "someone@sender.example",
      "late@remote.example",
    ], {
      stdin: "From: someone@sender.example\nTo: late@remote.example\nSubject: late\n\nBody text.\n",
      env: { MAIL_CONFIG: inst.dir },
    });
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const noticeLine = await waitFor(
      () => /: sender non-delivery notification: (\w+)/.exec(inst.readLog()),
      45_000,
    );
    const log = inst.readLog();
    assert(noticeLine, "no notice:\n" + log);
    assertStringIncludes(log, "to=<late@remote.example>, relay=none, delay=");
    assertStringIncludes(log, "dsn=4.4.1, status=deferred (try again later)");
    assertStringIncludes(log, "from=<someone@sender.example>, status=expired, returned to sender");
    const noticeId = noticeLine![1];
    assert(
      await waitFor(() => files(`${inst.queue}/deferred`).includes(noticeId), 20_000),
      inst.readLog(),
    );
    const original = readOriginal(`${inst.queue}/deferred/${noticeId}`)!;
    const report = await parseReport([...original.headers, "", ...original.body]);
    assertEquals(report.subject, "Undelivered Mail Returned to Sender");
    assertEquals(report.status[1]["Final-Recipient"], "rfc822; late@remote.example");
    assertEquals(report.status[1]["Action"], "failed");
    assertEquals(report.status[1]["Status"], "4.4.1");
    assertEquals(report.status[1]["Diagnostic-Code"], "X-Postfix; try again later");
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});
