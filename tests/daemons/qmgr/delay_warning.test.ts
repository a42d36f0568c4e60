// Delay warnings: cleanup writes the W record (arrival + delay_warning_time,
// 15 characters, before the first recipient, as the reference's cleanup),
// qmgr asks bounce for the warning once the time has come and sets W to -1;
// the notice is the reference's "Delayed Mail (still being retried)".
// Also the trace flags a submitter gives, kept by cleanup as it found them.

import { assert, assertEquals } from "../../assert.ts";
import { rec, run } from "../cleanup/helpers.ts";
import { runProgram } from "../../run.ts";
import { waitFor } from "../master/instance.ts";
import { readOriginal } from "../../../daemons/bounce/notify.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { queueIds, startInstance } from "../verify/instance.ts";
import { normalizeReport } from "../bounce/report_normalize.ts";

const golden = new URL("../../golden/bounce/", import.meta.url).pathname;

Deno.test("cleanup writes W as arrival + delay_warning_time before the first recipient", async () => {
  const r = await run(
    { recipients: ["bob@example.com", "carol@example.com"], text: "Subject: x\n\nbody" },
    "delay_warning_time = 4h\n",
  );
  const types = r.records.map((x) => x.type).join("");
  // T A(create_time) A(rewrite_context) F S W ... R
  assert(/^CTAAFSW/.test(types), types);
  const w = r.records.find((x) => x.type === "W")!;
  assertEquals(w.text, String(1795533859 + 4 * 3600).padStart(15, " "));
  assertEquals(r.records.filter((x) => x.type === "W").length, 1);
});

Deno.test("cleanup writes no W without delay_warning_time, and keeps a client's W", async () => {
  const none = await run({ text: "Subject: x\n\nbody" });
  assert(!none.records.some((x) => x.type === "W"));
  const given = await run({
    envelope: [rec("W", "1795999999"), rec("W", "1")],
    text: "Subject: x\n\nbody",
  }, "delay_warning_time = 4h\n");
  const ws = given.records.filter((x) => x.type === "W");
  assertEquals(ws.map((x) => x.text), ["1795999999".padStart(15, " ")]);
});

Deno.test("cleanup keeps the first numeric trace_flags attribute, and qmgr reads it", async () => {
  const r = await run({
    envelope: [
      rec("A", "trace_flags=bogus"),
      rec("A", "trace_flags=1024"),
      rec("A", "trace_flags=512"),
    ],
    text: "Subject: x\n\nbody",
  });
  const attrs = r.records.filter((x) => x.type === "A" && x.text.startsWith("trace_flags="));
  assertEquals(attrs.map((x) => x.text), ["trace_flags=1024"]);
  assert(r.log.some((l) => l.includes("bad trace_flags attribute value: bogus")), r.log.join("\n"));
  assertEquals(parseQueuedMessage("ABC123", r.file!).traceFlags, 1024);
});

Deno.test("a deferred message gets one delay warning, as the reference's notice", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const inst = await startInstance(["delay_warning_time = 1s"]);
  try {
    const sender = "someone@sender.example";
    const sent = await runProgram("sendmail", ["-f", sender, "late@later.example"], {
      stdin: `From: ${sender}\nTo: late@later.example\nSubject: late\n\nBody text.\n`,
      env: { MAIL_CONFIG: inst.dir },
    });
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    // Deferred at once; the warning goes out within a second of the W time (at the
    // first attempt, or the next one, which `postqueue -f` brings forward).
    let line: RegExpExecArray | null = null;
    for (let i = 0; i < 10 && !line; i++) {
      line = await waitFor(() => /: sender delay notification: (\w+)/.exec(inst.readLog()), 2000);
      if (!line) await runProgram("postqueue", ["-c", inst.dir, "-f"], {}).catch(() => {});
    }
    const log = inst.readLog();
    assert(line, "no delay warning:\n" + log);
    assertEquals(log.match(/sender delay notification/g)!.length, 1);
    const msgId = /(\w+): from=<someone@sender.example>/.exec(log)![1];
    // The W record now says -1: never again.
    assert(await waitFor(() => queueIds(`${inst.queue}/deferred`).includes(msgId), 10_000));
    const records = decodeRecords(Deno.readFileSync(`${inst.queue}/deferred/${msgId}`));
    const w = records.find((r) => r.type === "W")!;
    assertEquals(new TextDecoder().decode(w.data), "-1".padStart(15, " "));
    // The notice, compared with the reference's up to the returned headers.
    const noticeId = line![1];
    assert(await waitFor(() => queueIds(`${inst.queue}/deferred`).includes(noticeId), 10_000));
    const notice = readOriginal(`${inst.queue}/deferred/${noticeId}`)!;
    const ours = normalizeReport([...notice.headers, "", ...notice.body].join("\n"))
      .replaceAll("late@later.example", "late@remote.example");
    const reference = normalizeReport(Deno.readTextFileSync(`${golden}reference-delay.txt`));
    const cut = (t: string) => t.slice(0, t.indexOf("Content-Description: Undelivered Message"));
    assertEquals(cut(ours), cut(reference));
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});
