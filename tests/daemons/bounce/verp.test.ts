// The bounce service's VERP flush (request=verp), in-process: one notice
// per failed recipient, to that recipient's VERP sender, about that
// recipient only; postmaster copies one per recipient without a log line;
// NOTIFY=NEVER recipients get none; an expired message's defer log the
// same; bad delimiters refused. The reference's notices carry the same
// To:, X-Postfix-Sender and Final-Recipient (tests/daemons/qmgr/verp.test.ts).

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import type { AttrList } from "../../../lib/ipc/attr.ts";
import { appendAttrs } from "../../../lib/bounce_client.ts";
import { DsnNotify } from "../../../lib/dsn/status.ts";
import { type BounceEnv, handleBounceRequest } from "../../../daemons/bounce/notify.ts";
import { logPath } from "../../../daemons/bounce/log_file.ts";
import { defaultTemplates, expandTemplate } from "../../../daemons/bounce/templates.ts";
import { makeQueue, type TestQueue, withLog, writeMessage } from "../qmgr/helpers.ts";
import { parseReport } from "./mime_check.ts";

interface Sent {
  sender: string;
  recipient: string;
  lines: string[];
}

const now = new Date(Date.UTC(2026, 10, 24, 12, 0, 0));
const arrival = Date.UTC(2026, 10, 24, 11, 0, 0) / 1000;

function env(q: TestQueue, mainCf = ""): BounceEnv & { sent: Sent[] } {
  const config = configFromText(q.dir, "myhostname = mx.example.com\n" + mainCf);
  const sent: Sent[] = [];
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
    templates: {
      failure: expandTemplate(defaultTemplates.failure, config),
      delay: expandTemplate(defaultTemplates.delay, config),
      success: expandTemplate(defaultTemplates.success, config),
      verify: expandTemplate(defaultTemplates.verify, config),
    },
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
  log: "bounce" | "defer",
  id: string,
  rcpt: string,
  orig = rcpt,
  notify = 0,
): Promise<void> {
  const action = log === "bounce" ? "failed" : "delayed";
  const reason = log === "bounce" ? "no such user" : "try later";
  const code = await handleBounceRequest(
    e,
    attrs(appendAttrs(log, id, {
      origRcpt: orig,
      address: rcpt,
      offset: 100,
      dsnOrcpt: "",
      notify,
    }, {
      status: log === "bounce" ? "5.1.1" : "4.2.0",
      action,
      reason,
      diagType: "X-Postfix",
      diagText: reason,
    })),
    log,
  );
  assertEquals(code, 0);
}

function verpFlush(
  e: BounceEnv,
  log: string,
  id: string,
  delims = "+=",
  sender = "list@example.com",
) {
  return handleBounceRequest(
    e,
    attrs({
      request: "verp",
      log,
      queue_name: "active",
      queue_id: id,
      sender,
      envid: "",
      ret: 0,
      encoding: "",
      smtputf8: 0,
      verp_delims: delims,
    }),
    log,
  );
}

function header(lines: string[], name: string): string | undefined {
  return lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
}

function gone(path: string): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch {
    return true;
  }
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "bounce verp: one notice per recipient, to its VERP sender, about it alone",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q);
    const id = writeMessage(
      q,
      { sender: "list@example.com", recipients: ["u1@bad.org", "target@y.org"], arrival },
      "active",
    );
    await append(e, "bounce", id, "u1@bad.org");
    await append(e, "bounce", id, "target@y.org", "alias@x.org");
    const log = await withLog(async (lines) => {
      assertEquals(await verpFlush(e, "bounce", id), 0);
      return lines.join("\n");
    });
    assertEquals(e.sent.map((s) => [s.sender, s.recipient]), [
      ["", "list+u1=bad.org@example.com"],
      // The original recipient names the VERP sender.
      ["", "list+alias=x.org@example.com"],
    ]);
    assertStringIncludes(log, `${id}: sender non-delivery notification: NOTICE1`);
    assertStringIncludes(log, `${id}: sender non-delivery notification: NOTICE2`);
    const finals = [];
    for (const s of e.sent) {
      assertEquals(header(s.lines, "To"), s.recipient);
      const report = await parseReport(s.lines);
      assertEquals(report.defects, []);
      assertEquals(report.subject, "Undelivered Mail Returned to Sender");
      assertEquals(report.status[0]["X-Postfix-Sender"], "rfc822; list@example.com");
      assertEquals(report.status.length, 2, "one recipient per notice");
      finals.push(report.status[1]["Final-Recipient"]);
      assertStringIncludes(report.returned, "Hello.");
    }
    assertEquals(finals, ["rfc822; u1@bad.org", "rfc822; target@y.org"]);
    assert(gone(logPath(q.layout, "bounce", id)), "the bounce log is removed");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("bounce verp: the delimiters of the request, NOTIFY=NEVER honoured", opts, async () => {
  const q = await makeQueue();
  const e = env(q);
  const id = writeMessage(q, { sender: "owner-l@example.com", recipients: ["a@x.org"] }, "active");
  await append(e, "bounce", id, "a@x.org");
  await append(e, "bounce", id, "quiet@x.org", "quiet@x.org", DsnNotify.NEVER);
  await append(e, "bounce", id, "noat@example.com", "noat");
  assertEquals(await verpFlush(e, "bounce", id, "-=", "owner-l@example.com"), 0);
  assertEquals(e.sent.map((s) => s.recipient), [
    "owner-l-a=x.org@example.com",
    "owner-l-noat@example.com",
  ]);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "bounce verp: postmaster copies one per recipient, not logged beside a sender notice",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q, "notify_classes = bounce\nbounce_notice_recipient = pm@example.com\n");
    const id = writeMessage(q, { sender: "list@example.com", recipients: ["a@x.org"] }, "active");
    await append(e, "bounce", id, "u1@bad.org");
    await append(e, "bounce", id, "u2@bad.org");
    const log = await withLog(async (lines) => {
      assertEquals(await verpFlush(e, "bounce", id), 0);
      return lines.join("\n");
    });
    assertEquals(e.sent.map((s) => [s.sender, s.recipient]), [
      ["", "list+u1=bad.org@example.com"],
      ["double-bounce@mx.example.com", "pm@example.com"],
      ["", "list+u2=bad.org@example.com"],
      ["double-bounce@mx.example.com", "pm@example.com"],
    ]);
    assertEquals(header(e.sent[1].lines, "Subject"), "Postmaster Copy: Undelivered Mail");
    assertEquals(log.split("\n").filter((l) => l.includes("notification")).length, 2);
    assertEquals(log.includes("postmaster non-delivery notification"), false);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("bounce verp: NOTIFY=NEVER: only the postmaster copy, logged", opts, async () => {
  const q = await makeQueue();
  const e = env(q, "notify_classes = bounce\nbounce_notice_recipient = pm@example.com\n");
  const id = writeMessage(q, { sender: "list@example.com", recipients: ["a@x.org"] }, "active");
  await append(e, "bounce", id, "u1@bad.org", "u1@bad.org", DsnNotify.NEVER);
  await append(e, "bounce", id, "u2@bad.org", "u2@bad.org", DsnNotify.NEVER);
  const log = await withLog(async (lines) => {
    assertEquals(await verpFlush(e, "bounce", id), 0);
    return lines.join("\n");
  });
  assertEquals(e.sent.map((s) => s.recipient), ["pm@example.com", "pm@example.com"]);
  assertStringIncludes(log, `${id}: postmaster non-delivery notification: NOTICE1`);
  assertStringIncludes(log, `${id}: postmaster non-delivery notification: NOTICE2`);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "bounce verp: an expired message's delayed recipients, failed, one notice each",
  opts,
  async () => {
    const q = await makeQueue();
    const e = env(q);
    const id = writeMessage(
      q,
      { sender: "list@example.com", recipients: ["s1@slow.org"] },
      "active",
    );
    await append(e, "defer", id, "s1@slow.org");
    await append(e, "defer", id, "s2@slow.org");
    assertEquals(await verpFlush(e, "defer", id), 0);
    assertEquals(e.sent.map((s) => s.recipient), [
      "list+s1=slow.org@example.com",
      "list+s2=slow.org@example.com",
    ]);
    for (const s of e.sent) {
      const report = await parseReport(s.lines);
      assertEquals(report.status[1]["Action"], "failed");
    }
    assert(gone(logPath(q.layout, "defer", id)), "the defer log is removed");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("bounce verp: bad delimiters are refused, the log kept", opts, async () => {
  const q = await makeQueue();
  const e = env(q);
  const id = writeMessage(q, { sender: "list@example.com", recipients: ["a@x.org"] }, "active");
  await append(e, "bounce", id, "a@x.org");
  const log = await withLog(async (lines) => {
    assertEquals(await verpFlush(e, "bounce", id, "+"), -1);
    return lines.join("\n");
  });
  assertStringIncludes(log, `${id}: bad VERP delimiters: "+"`);
  assertEquals(e.sent, []);
  assert(!gone(logPath(q.layout, "bounce", id)), "the log stays");
  await Deno.remove(q.dir, { recursive: true });
});
