// The virtual delivery agent: mailbox and maildir delivery under
// virtual_mailbox_base, uid/gid maps, unknown users, table search order with
// address extensions, size limits, Delivered-To headers and ownership, with the log lines
// and bounce/defer records Postfix's virtual(8) makes.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { DeliverySession } from "../../../lib/deliver/agent.ts";
import { sendDeliverRequest } from "../../../lib/deliver/client.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { deliverVirtual, settingsFromConfig } from "../../../daemons/virtual/mod.ts";
import {
  makeQueue,
  recordingBounce,
  type TestQueue,
  withLog,
  writeMessage,
} from "../qmgr/helpers.ts";
import { serveAgent } from "../../lib/deliver/agent_harness.ts";
import { testIdentity } from "../../lib/mailbox/fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface Setup {
  q: TestQueue;
  base: string;
  uid: number;
  gid: number;
}

/** A queue and a mailbox base anyone may write; uid/gid are the test user's when root. */
async function setup(): Promise<Setup> {
  const q = await makeQueue();
  const base = `${q.dir}/vmail`;
  Deno.mkdirSync(base, { mode: 0o1777 });
  Deno.chmodSync(base, 0o1777);
  Deno.chmodSync(q.dir, 0o755);
  const id = testIdentity();
  return { q, base, uid: id?.uid ?? Deno.uid() ?? 0, gid: id?.gid ?? Deno.gid() ?? 0 };
}

function mainCf(s: Setup, extra = ""): string {
  return `virtual_mailbox_base = ${s.base}
virtual_mailbox_maps = inline:{ {box@example.com = example.com/box}, {dir@example.com = example.com/dir/}, {@catch.example = catch/all} }
virtual_uid_maps = static:${s.uid}
virtual_gid_maps = static:${s.gid}
virtual_minimum_uid = ${Math.min(s.uid, 100)}
recipient_delimiter = +
${extra}`;
}

/** Delivers a message to `recipients` with main.cf `text`; returns log, bounce calls, results. */
async function deliver(
  s: Setup,
  text: string,
  recipients: string[],
  spec: { sender?: string; body?: string[]; flags?: number } = {},
) {
  const config = configFromText(s.q.dir, text);
  const settings = settingsFromConfig(config);
  const bounce = recordingBounce();
  const id = writeMessage(s.q, { recipients, sender: spec.sender, body: spec.body }, "active");
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(s.q.layout, "active", id)));
  const session = new DeliverySession({
    flags: spec.flags ?? 0,
    queueName: "active",
    queueId: id,
    dataOffset: msg.dataOffset,
    dataSize: msg.size,
    nexthop: "example.com",
    encoding: "",
    smtputf8: 0,
    sender: msg.sender,
    envid: "",
    ret: 0,
    arrival: msg.arrival,
    active: msg.arrival,
    attrs: {},
    recipients: msg.recipients,
  }, { layout: s.q.layout, bounce, resolution: 2 });
  const log = await withLog(async (lines) => {
    await deliverVirtual(session, settings, s.q.layout);
    return lines.join("\n");
  });
  const reply = session.reply();
  session.close();
  return { log, bounce, results: [...reply.results.values()], id };
}

Deno.test(
  "virtual delivers to a maildir as the mapped uid with Postfix's prepended headers",
  opts,
  async () => {
    const s = await setup();
    const { log, results, id } = await deliver(s, mainCf(s), ["dir@example.com"], {
      sender: "s@example.org",
    });
    assertEquals(results, ["sent"]);
    assertStringIncludes(log, `${id}: to=<dir@example.com>, relay=virtual, delay=`);
    assertStringIncludes(log, "dsn=2.0.0, status=sent (delivered to maildir)");
    const dir = `${s.base}/example.com/dir/new`;
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(files.length, 1);
    assertMatch(files[0], /^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\./);
    const text = Deno.readTextFileSync(`${dir}/${files[0]}`);
    assert(
      text.startsWith(
        "Return-Path: <s@example.org>\nX-Original-To: dir@example.com\nDelivered-To: dir@example.com\nSubject: test\n",
      ),
      text,
    );
    const info = Deno.statSync(`${dir}/${files[0]}`);
    assertEquals([info.uid, info.gid], [s.uid, s.gid]);
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test(
  "virtual appends to an mbox with a From_ line, owned by the mapped uid",
  opts,
  async () => {
    const s = await setup();
    Deno.mkdirSync(`${s.base}/example.com`, { mode: 0o777 });
    Deno.chmodSync(`${s.base}/example.com`, 0o777);
    const { log, results } = await deliver(s, mainCf(s), ["box@example.com"], {
      body: ["Subject: hi", "", "From the start", "end"],
    });
    assertEquals(results, ["sent"]);
    assertStringIncludes(log, "relay=virtual, delay=");
    assertStringIncludes(log, "dsn=2.0.0, status=sent (delivered to mailbox)");
    const path = `${s.base}/example.com/box`;
    const text = Deno.readTextFileSync(path);
    assertMatch(text, /^From sender@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
    assertStringIncludes(
      text,
      "\nDelivered-To: box@example.com\nSubject: hi\n\n>From the start\nend\n\n",
    );
    const info = Deno.statSync(path);
    assertEquals([info.uid, info.mode! & 0o777], [s.uid, 0o600]);
    assert(!exists(`${path}.lock`));
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test("virtual bounces an unknown recipient with 5.1.1 unknown user", opts, async () => {
  const s = await setup();
  const { log, results, bounce } = await deliver(s, mainCf(s), ["Nobody@Example.com"]);
  assertEquals(results, ["bounced"]);
  assertStringIncludes(log, 'dsn=5.1.1, status=bounced (unknown user: "nobody@example.com")');
  assertEquals(bounce.calls.map((c) => [c.log, c.dsn?.status]), [["bounce", "5.1.1"]]);
  await Deno.remove(s.q.dir, { recursive: true });
});

Deno.test(
  "virtual finds user+ext@domain under user@domain and @domain as the catch-all",
  opts,
  async () => {
    const s = await setup();
    Deno.mkdirSync(`${s.base}/catch`, { mode: 0o777 });
    Deno.chmodSync(`${s.base}/catch`, 0o777);
    const { results, log } = await deliver(s, mainCf(s), [
      "dir+news@example.com",
      "anyone@catch.example",
    ]);
    assertEquals(results, ["sent", "sent"], log);
    assertEquals([...Deno.readDirSync(`${s.base}/example.com/dir/new`)].length, 1);
    assert(exists(`${s.base}/catch/all`));
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test(
  "virtual without recipient_delimiter looks up user+ext@domain whole, as the reference",
  opts,
  async () => {
    const s = await setup();
    const { log, results } = await deliver(s, mainCf(s, "recipient_delimiter ="), [
      "Dir+news@example.com",
    ]);
    assertEquals(results, ["bounced"]);
    assertStringIncludes(log, 'dsn=5.1.1, status=bounced (unknown user: "dir+news@example.com")');
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test(
  "virtual defers with 4.3.5 when the uid is below virtual_minimum_uid or missing",
  opts,
  async () => {
    const s = await setup();
    const low = await deliver(s, mainCf(s, "virtual_minimum_uid = 1000000"), ["dir@example.com"]);
    assertEquals(low.results, ["deferred"]);
    assertStringIncludes(
      low.log,
      `warning: recipient dir@example.com: bad uid ${s.uid} in virtual_uid_maps`,
    );
    assertStringIncludes(low.log, "dsn=4.3.5, status=deferred (mail system configuration error)");
    const missing = await deliver(s, mainCf(s, "virtual_gid_maps = inline:{ {x@y = 1} }"), [
      "dir@example.com",
    ]);
    assertEquals(missing.results, ["deferred"]);
    assertStringIncludes(
      missing.log,
      "warning: recipient dir@example.com: not found in virtual_gid_maps",
    );
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test(
  "virtual delivers a message that already has the recipient's Delivered-To, as the reference does",
  opts,
  async () => {
    const s = await setup();
    const { log, results } = await deliver(s, mainCf(s), ["dir@example.com"], {
      body: ["Delivered-To: dir@example.com", "Subject: again", "", "x"],
    });
    assertEquals(results, ["sent"]);
    assertStringIncludes(log, "status=sent (delivered to maildir)");
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test(
  "virtual bounces a message over virtual_mailbox_limit with 5.2.2, the mailbox unchanged",
  opts,
  async () => {
    const s = await setup();
    const path = `${s.base}/catch/all`;
    Deno.mkdirSync(`${s.base}/catch`, { mode: 0o777 });
    Deno.chmodSync(`${s.base}/catch`, 0o777);
    Deno.writeTextFileSync(path, "From x  Tue Nov 24 19:01:05 2026\n\nold\n\n", { mode: 0o600 });
    Deno.chownSync(path, s.uid, s.gid);
    const before = Deno.readTextFileSync(path);
    const { log, results } = await deliver(
      s,
      mainCf(s, "virtual_mailbox_limit = 100\nmessage_size_limit = 100"),
      [
        "a@catch.example",
      ],
      {
        body: ["Subject: big", "", "y".repeat(200)],
      },
    );
    assertEquals(results, ["bounced"]);
    assertStringIncludes(
      log,
      `dsn=5.2.2, status=bounced (delivery failed to mailbox ${path}: error writing message: File too large)`,
    );
    assertEquals(Deno.readTextFileSync(path), before);
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test("virtual defers delivery to an mbox the recipient does not own", opts, async () => {
  const s = await setup();
  if (Deno.uid() !== 0) return; // Needs a second user.
  const path = `${s.base}/catch/all`;
  Deno.mkdirSync(`${s.base}/catch`, { mode: 0o777 });
  Deno.chmodSync(`${s.base}/catch`, 0o777);
  Deno.writeTextFileSync(path, "", { mode: 0o666 });
  Deno.chmodSync(path, 0o666);
  const { log, results } = await deliver(s, mainCf(s), ["a@catch.example"]);
  assertEquals(results, ["deferred"]);
  assertStringIncludes(
    log,
    `dsn=4.2.0, status=deferred (delivery failed to mailbox ${path}: destination ${path} is not owned by recipient)`,
  );
  assertStringIncludes(
    log,
    'specify "strict_mailbox_ownership = no" to ignore mailbox ownership mismatch',
  );
  const relaxed = await deliver(s, mainCf(s, "strict_mailbox_ownership = no"), ["a@catch.example"]);
  assertEquals(relaxed.results, ["sent"]);
  await Deno.remove(s.q.dir, { recursive: true });
});

Deno.test(
  "virtual reports a maildir it may not create as a deferral with Postfix's warnings",
  opts,
  async () => {
    const s = await setup();
    if (Deno.uid() !== 0) return; // Root writes anywhere.
    Deno.chmodSync(s.base, 0o755);
    const { log, results } = await deliver(s, mainCf(s), ["dir@example.com"]);
    assertEquals(results, ["deferred"]);
    assertMatch(
      log,
      new RegExp(
        `dsn=4\\.2\\.0, status=deferred \\(maildir delivery failed: create maildir file ${s.base}/example\\.com/dir/tmp/\\d+\\.P\\d+\\.[^:]+: Permission denied\\)`,
      ),
    );
    assertStringIncludes(log, `warning: maildir access problem for UID/GID=${s.uid}/${s.gid}:`);
    assertStringIncludes(log, "warning: perhaps you need to create the maildirs in advance");
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

Deno.test("virtual answers an address probe without delivering", opts, async () => {
  const s = await setup();
  const { log, results } = await deliver(s, mainCf(s), ["dir@example.com"], { flags: 1 << 9 });
  assertEquals(results, ["sent"]);
  assertStringIncludes(log, "dsn=2.0.0, status=deliverable (delivers to maildir)");
  assert(!exists(`${s.base}/example.com`));
  await Deno.remove(s.q.dir, { recursive: true });
});

Deno.test(
  "virtual serves qmgr's delivery protocol and marks delivered recipients done",
  opts,
  async () => {
    const s = await setup();
    const config = configFromText(s.q.dir, mainCf(s));
    const settings = settingsFromConfig(config);
    const bounce = recordingBounce();
    const agent = await serveAgent(
      s.q.dir,
      { layout: s.q.layout, bounce, resolution: 2 },
      (session) => deliverVirtual(session, settings, s.q.layout),
    );
    const id = writeMessage(
      s.q,
      { recipients: ["dir@example.com", "ghost@example.com"] },
      "active",
    );
    const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(s.q.layout, "active", id)));
    const reply = await withLog(() =>
      sendDeliverRequest(agent.path, {
        flags: 0,
        queueName: "active",
        queueId: id,
        dataOffset: msg.dataOffset,
        dataSize: msg.size,
        nexthop: "example.com",
        encoding: "",
        smtputf8: 0,
        sender: msg.sender,
        envid: "",
        ret: 0,
        arrival: msg.arrival,
        active: msg.arrival,
        attrs: {},
        recipients: msg.recipients,
      })
    );
    await agent.close();
    assertEquals([...reply.results.values()], ["sent", "bounced"]);
    const left = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(s.q.layout, "active", id)));
    assertEquals(left.recipients.length, 0);
    await Deno.remove(s.q.dir, { recursive: true });
  },
);

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("virtual refuses to start with virtual_mailbox_limit below message_size_limit", async () => {
  const s = await setup();
  const config = configFromText(s.q.dir, mainCf(s, "virtual_mailbox_limit = 1000"));
  const log = await withLog((lines) => {
    try {
      settingsFromConfig(config);
    } catch {
      // fatal() throws after logging.
    }
    return Promise.resolve(lines.join("\n"));
  });
  assertStringIncludes(
    log,
    "fatal: configuration error: virtual_mailbox_limit is smaller than message_size_limit",
  );
  await Deno.remove(s.q.dir, { recursive: true });
});
