// The bounce service in-process: per-message logs, and notices checked with
// an independent MIME parser (python3's email package) and a golden file.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import type { AttrList } from "../../../lib/ipc/attr.ts";
import { appendAttrs } from "../../../lib/bounce_client.ts";
import { rfc822Date } from "../../../lib/dsn/report.ts";
import { DsnNotify, DsnRet } from "../../../lib/dsn/status.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { type BounceEnv, handleBounceRequest } from "../../../daemons/bounce/notify.ts";
import { logPath, parseLog } from "../../../daemons/bounce/log_file.ts";
import {
  defaultTemplates,
  expandTemplate,
  parseTemplateFile,
} from "../../../daemons/bounce/templates.ts";
import { makeQueue, type TestQueue, withLog, writeMessage } from "../qmgr/helpers.ts";
import { parseReport } from "./mime_check.ts";

const golden = new URL("../../golden/bounce/", import.meta.url).pathname;

interface Sent {
  sender: string;
  recipient: string;
  lines: string[];
}

const now = new Date(Date.UTC(2026, 10, 24, 12, 0, 0));
const arrival = Date.UTC(2026, 10, 24, 11, 0, 0) / 1000;

function env(q: TestQueue, mainCf = "", sent: Sent[] = []): BounceEnv & { sent: Sent[] } {
  const config = configFromText(q.dir, "myhostname = mx.example.com\n" + mainCf);
  const templates = {
    failure: expandTemplate(defaultTemplates.failure, config),
    delay: expandTemplate(defaultTemplates.delay, config),
    success: expandTemplate(defaultTemplates.success, config),
    verify: expandTemplate(defaultTemplates.verify, config),
  };
  return {
    sent,
    layout: q.layout,
    myhostname: "mx.example.com",
    notifyClasses: new Set(config.list("notify_classes")),
    bounceNoticeRecipient: config.get("bounce_notice_recipient"),
    twoBounceNoticeRecipient: config.get("2bounce_notice_recipient"),
    delayNoticeRecipient: config.get("delay_notice_recipient"),
    doubleBounceSender: config.get("double_bounce_sender"),
    bounceSizeLimit: config.size("bounce_size_limit"),
    maximalQueueLifetime: config.time("maximal_queue_lifetime"),
    templates,
    now: () => now,
    submit(sender, recipient, lines) {
      sent.push({ sender, recipient, lines });
      return Promise.resolve(`NOTICE${sent.length}`);
    },
  };
}

function attrs(o: Record<string, string | number>): AttrList {
  return new Map(Object.entries(o).map(([k, v]) => [k, String(v)]));
}

async function append(
  e: BounceEnv,
  log: "bounce" | "defer" | "trace",
  id: string,
  rcpt: string,
  status: string,
  reason: string,
  extra: { orig?: string; notify?: number; dsnOrcpt?: string } = {},
): Promise<void> {
  const action = log === "bounce" ? "failed" : log === "defer" ? "delayed" : "delivered";
  const code = await handleBounceRequest(
    e,
    attrs(appendAttrs(log, id, {
      origRcpt: extra.orig ?? rcpt,
      address: rcpt,
      offset: 100,
      dsnOrcpt: extra.dsnOrcpt ?? "",
      notify: extra.notify ?? 0,
    }, { status, action, reason, diagType: "X-Postfix", diagText: reason })),
    log,
  );
  assertEquals(code, 0);
}

function flush(
  e: BounceEnv,
  log: string,
  id: string,
  request = "flush",
  sender = "sender@example.org",
  ret = 0,
) {
  return handleBounceRequest(
    e,
    attrs({
      request,
      log,
      queue_name: "active",
      queue_id: id,
      sender,
      envid: "",
      ret,
      encoding: "",
      smtputf8: 0,
    }),
    log,
  );
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("bounce append writes the per-recipient logfile as name=value lines", opts, async () => {
  const q = await makeQueue();
  const e = env(q);
  await append(e, "bounce", "ABC123", "user@example.com", "5.1.1", "unknown user", {
    orig: "alias@example.com",
  });
  await append(
    e,
    "bounce",
    "ABC123",
    "two@example.com",
    "5.0.0",
    "mail for example.com loops back",
  );
  const text = Deno.readTextFileSync(logPath(q.layout, "bounce", "ABC123"));
  assertEquals(text, Deno.readTextFileSync(`${golden}bounce-log.txt`));
  const entries = parseLog(text);
  assertEquals(entries.map((x) => [x.address, x.origRcpt, x.status]), [
    ["user@example.com", "alias@example.com", "5.1.1"],
    ["two@example.com", "two@example.com", "5.0.0"],
  ]);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "bounce flush sends a valid multipart/report non-delivery notice and removes the log",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q);
    const id = writeMessage(
      q,
      { recipients: ["user@example.com", "two@example.com"], arrival },
      "active",
    );
    await append(e, "bounce", id, "user@example.com", "5.1.1", "unknown user", {
      orig: "alias@example.com",
      dsnOrcpt: "rfc822;alias@example.com",
    });
    await append(
      e,
      "bounce",
      id,
      "two@example.com",
      "5.0.0",
      "mail for example.com loops back to myself",
    );
    const log = await withLog(async (lines) => {
      assertEquals(await flush(e, "bounce", id), 0);
      return lines.join("\n");
    });
    assertStringIncludes(log, `${id}: sender non-delivery notification: NOTICE1`);
    assertEquals(e.sent.length, 1);
    assertEquals(e.sent[0].sender, "");
    assertEquals(e.sent[0].recipient, "sender@example.org");
    const report = await parseReport(e.sent[0].lines);
    assertEquals(report.defects, []);
    assertEquals(report.contentType, "multipart/report");
    assertEquals(report.reportType, "delivery-status");
    assertEquals(report.subject, "Undelivered Mail Returned to Sender");
    assertEquals(report.parts, ["text/plain", "message/delivery-status", "message/rfc822"]);
    assertEquals(report.status[0]["Reporting-MTA"], "dns; mx.example.com");
    assertEquals(report.status[0]["X-Postfix-Queue-ID"], id);
    assertEquals(report.status[1]["Final-Recipient"], "rfc822; user@example.com");
    assertEquals(report.status[1]["Original-Recipient"], "rfc822;alias@example.com");
    assertEquals(report.status[1]["Action"], "failed");
    assertEquals(report.status[1]["Status"], "5.1.1");
    assertEquals(report.status[1]["Diagnostic-Code"], "X-Postfix; unknown user");
    assertEquals(report.status[2]["Final-Recipient"], "rfc822; two@example.com");
    assertEquals(report.status[2]["Original-Recipient"], undefined);
    assertStringIncludes(report.returned, "Hello.");
    let gone = false;
    try {
      Deno.statSync(logPath(q.layout, "bounce", id));
    } catch {
      gone = true;
    }
    assert(gone, "the bounce log is removed after the notice");
    const boundary = `${id}.${now.getTime() / 1000}/mx.example.com`;
    if (Deno.env.get("UPDATE_GOLDEN")) {
      Deno.writeTextFileSync(
        `${golden}failure-notice.txt`,
        (e.sent[0].lines.join("\n") + "\n").replaceAll(boundary, "@BOUNDARY@").replaceAll(
          id,
          "@ID@",
        )
          .replaceAll(rfc822Date(now), "@NOW@").replaceAll(
            rfc822Date(new Date(arrival * 1000)),
            "@ARRIVAL@",
          ),
      );
    }
    const expected = Deno.readTextFileSync(`${golden}failure-notice.txt`)
      .replaceAll("@ID@", id)
      .replaceAll("@NOW@", rfc822Date(now))
      .replaceAll("@ARRIVAL@", rfc822Date(new Date(arrival * 1000)))
      .replaceAll("@BOUNDARY@", `${id}.${now.getTime() / 1000}/mx.example.com`);
    assertEquals(e.sent[0].lines.join("\n") + "\n", expected);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "bounce returns headers only for RET=HDRS and above bounce_size_limit",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q, "bounce_size_limit = 10\n");
    const id = writeMessage(q, { recipients: ["user@example.com"], arrival }, "active");
    await append(e, "bounce", id, "user@example.com", "5.1.1", "unknown user");
    assertEquals(await flush(e, "bounce", id), 0);
    const big = await parseReport(e.sent[0].lines);
    assertEquals(big.parts[2], "text/rfc822-headers");
    assert(!big.returned.includes("Hello."), "no body");
    const e2 = env(q);
    await append(e2, "bounce", id, "user@example.com", "5.1.1", "unknown user");
    assertEquals(await flush(e2, "bounce", id, "flush", "sender@example.org", DsnRet.HDRS), 0);
    assertEquals((await parseReport(e2.sent[0].lines)).parts[2], "text/rfc822-headers");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "defer flush returns an expired message with every delayed recipient failed",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q);
    const id = writeMessage(q, { recipients: ["user@slow.test"], arrival }, "active");
    await append(
      e,
      "defer",
      id,
      "user@slow.test",
      "4.4.1",
      "connect to slow.test: Connection refused",
    );
    assertEquals(await flush(e, "defer", id), 0);
    const report = await parseReport(e.sent[0].lines);
    assertEquals(report.status[1]["Action"], "failed");
    assertEquals(report.status[1]["Status"], "4.4.1");
    assertEquals(
      report.status[1]["Diagnostic-Code"],
      "X-Postfix; connect to slow.test: Connection refused",
    );
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("defer warn sends a delay notice and keeps the defer log", opts, async () => {
  const q = await makeQueue();
  const e = env(q, "delay_warning_time = 4h\n");
  const id = writeMessage(q, { recipients: ["user@slow.test"], arrival }, "active");
  await append(
    e,
    "defer",
    id,
    "user@slow.test",
    "4.4.1",
    "connect to slow.test: Connection refused",
  );
  const log = await withLog(async (lines) => {
    assertEquals(await flush(e, "defer", id, "warn"), 0);
    return lines.join("\n");
  });
  assertStringIncludes(log, `${id}: sender delay notification: NOTICE1`);
  const report = await parseReport(e.sent[0].lines);
  assertEquals(report.defects, []);
  assertEquals(report.subject, "Delayed Mail (still being retried)");
  assertEquals(report.status[1]["Action"], "delayed");
  assert(report.status[1]["Will-Retry-Until"], "Will-Retry-Until is given");
  assertEquals(report.parts[2], "text/rfc822-headers");
  assertStringIncludes(
    e.sent[0].lines.join("\n"),
    "for more than 4 hour(s).\nIt will be retried until it is 5 day(s) old.",
  );
  Deno.statSync(logPath(q.layout, "defer", id));
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "trace flush sends a success notice for NOTIFY=SUCCESS recipients only",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q);
    const id = writeMessage(
      q,
      { recipients: ["a@example.com", "b@example.com"], arrival },
      "active",
    );
    await append(e, "trace", id, "a@example.com", "2.0.0", "delivered to mailbox", {
      notify: DsnNotify.SUCCESS,
    });
    await append(e, "trace", id, "b@example.com", "2.0.0", "delivered to mailbox", {
      notify: DsnNotify.FAILURE,
    });
    assertEquals(await flush(e, "trace", id), 0);
    assertEquals(e.sent.length, 1);
    const report = await parseReport(e.sent[0].lines);
    assertEquals(report.subject, "Successful Mail Delivery Report");
    assertEquals(report.status.length, 2);
    assertEquals(report.status[1]["Action"], "delivered");
    assertEquals(report.status[1]["Final-Recipient"], "rfc822; a@example.com");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "bounce sends postmaster copies per notify_classes and handles double bounces",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q, "notify_classes = bounce, 2bounce\n");
    const id = writeMessage(q, { recipients: ["user@example.com"], arrival }, "active");
    await append(e, "bounce", id, "user@example.com", "5.1.1", "unknown user", {
      notify: DsnNotify.NEVER,
    });
    assertEquals(await flush(e, "bounce", id), 0);
    assertEquals(
      e.sent.map((s) => [s.sender, s.recipient]),
      [["double-bounce@mx.example.com", "postmaster"]],
      "NOTIFY=NEVER: no sender notice",
    );
    const copy = await parseReport(e.sent[0].lines);
    assertEquals(copy.subject, "Postmaster Copy: Undelivered Mail");
    assertEquals(copy.parts[2], "text/rfc822-headers");
    // A bounce of a bounce goes to 2bounce_notice_recipient, or nowhere without the class.
    const id2 = writeMessage(
      q,
      { sender: "", recipients: ["user@example.com"], arrival },
      "active",
    );
    const e2 = env(q, "notify_classes = 2bounce\n2bounce_notice_recipient = admin\n");
    await append(e2, "bounce", id2, "user@example.com", "5.1.1", "unknown user");
    assertEquals(await flush(e2, "bounce", id2, "flush", ""), 0);
    assertEquals(e2.sent.map((s) => [s.sender, s.recipient]), [[
      "double-bounce@mx.example.com",
      "admin",
    ]]);
    const e3 = env(q);
    await append(e3, "bounce", id2, "user@example.com", "5.1.1", "unknown user");
    const log = await withLog(async (lines) => {
      assertEquals(await flush(e3, "bounce", id2, "flush", ""), 0);
      return lines.join("\n");
    });
    assertEquals(e3.sent.length, 0);
    assertStringIncludes(log, "undeliverable postmaster notification discarded");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("bounce_template_file replaces a template's headers and text", () => {
  const t = parseTemplateFile(
    "# comment\nfailure_template = <<EOF\nCharset: us-ascii\nSubject: Nope\n\nNo luck at $myhostname, $$5.\nEOF\n",
    "bounce.cf",
  );
  assertEquals(t.failure.subject, "Nope");
  assertEquals(t.delay.subject, "Delayed Mail (still being retried)");
  const config = configFromText("/nonexistent", "myhostname = mx.example.com\n");
  assertEquals(expandTemplate(t.failure, config).text, "No luck at mx.example.com, $5.\n");
});

Deno.test("the built-in templates' text matches postconf -b of the reference", () => {
  const config = configFromText(
    "/nonexistent",
    "myhostname = vm.localdomain\ndelay_warning_time = 0h\n",
  );
  const expected = Deno.readTextFileSync(`${golden}postconf-b.txt`);
  const text = (["failure", "delay", "success", "verify"] as const).map((name) =>
    `expanded_${name}_text = <<EOF\n${expandTemplate(defaultTemplates[name], config).text}EOF\n`
  ).join("\n");
  assertEquals(text, expected);
});

Deno.test("bounce refuses malformed requests", opts, async () => {
  const q = await makeQueue();
  const e = env(q);
  const log = await withLog(async (lines) => {
    assertEquals(
      await handleBounceRequest(e, attrs({ request: "append", queue_id: "../x" }), "bounce"),
      -1,
    );
    assertEquals(
      await handleBounceRequest(
        e,
        attrs({ request: "flush", queue_id: "ABC", queue_name: "../x" }),
        "bounce",
      ),
      -1,
    );
    assertEquals(
      await handleBounceRequest(
        e,
        attrs({ request: "bogus", queue_id: "ABC", queue_name: "active" }),
        "bounce",
      ),
      -1,
    );
    return lines.join("\n");
  });
  assertStringIncludes(log, "warning: bad append request");
  void queueFilePath;
  await Deno.remove(q.dir, { recursive: true });
});
