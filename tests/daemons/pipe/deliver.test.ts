// pipe(8) deliveries through the delivery-agent protocol: a queued message,
// a delivery request as qmgr sends it, the command a small shell script that
// records its arguments, input and identity. Expected texts are the
// reference pipe's (Postfix 3.7) for the same cases.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { sendDeliverRequest } from "../../../lib/deliver/client.ts";
import { DeliverFlag, type DeliverReply } from "../../../lib/deliver/request.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { parsePipeAttributes } from "../../../daemons/pipe/attributes.ts";
import { asctime, deliverPipe, successText } from "../../../daemons/pipe/deliver.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "../qmgr/helpers.ts";
import { serveAgent } from "../../lib/deliver/agent_harness.ts";
import { ensureTestUser } from "../master/instance.ts";
import { makeJail } from "./jail.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const root = Deno.uid() === 0;
/** The user= of the tests: the test user as root (to prove the switch), else any user. */
const runAs = root ? ensureTestUser() : "nobody";
const fixedNow = new Date(2026, 10, 24, 19, 6, 35);

/** A recording command: arguments one per line in [], then stdin, then its ids and directory. */
const recorder = `#!/bin/sh
out="$(dirname "$0")/record"
for a in "$@"; do printf '[%s]\\n' "$a"; done > "$out"
echo ---- >> "$out"
cat >> "$out"
echo ---- >> "$out"
id -u >> "$out"; id -g >> "$out"; pwd >> "$out"
echo "recorded $# args"
`;

interface Case {
  operands: string[];
  recipients?: string[];
  sender?: string;
  body?: string[];
  main?: string;
  timeLimit?: number;
  attrs?: Record<string, string>;
  nexthop?: string;
  flags?: number;
  verify?: (address: string, status: number, why: string) => Promise<boolean>;
}

interface Outcome {
  reply: DeliverReply;
  log: string;
  record: string;
  bounce: ReturnType<typeof recordingBounce>;
  dir: string;
}

/** Queues a message, serves deliverPipe with the operands, sends one request. */
async function deliver(c: Case): Promise<Outcome> {
  const q = await makeQueue();
  // The command runs as another user: it must reach its folder and the queue directory.
  await Deno.chmod(q.dir, 0o777);
  await Deno.chmod(q.layout.queueDirectory, 0o755);
  const script = `${q.dir}/record.sh`;
  Deno.writeTextFileSync(script, recorder);
  Deno.chmodSync(script, 0o755);
  const bounce = recordingBounce();
  const id = writeMessage(q, {
    sender: c.sender ?? "sender@x.example",
    recipients: c.recipients ?? ["User+ext@t1.test"],
    body: c.body,
  }, "active");
  const config = configFromText(q.dir, c.main ?? "mail_owner = no-such-owner\n");
  const operands = c.operands.map((o) => o.replace("SCRIPT", script));
  const attrs = parsePipeAttributes(operands, config);
  const agent = await serveAgent(
    q.dir,
    { layout: q.layout, bounce, resolution: 2, verify: c.verify },
    (s) =>
      deliverPipe(s, {
        service: "p1",
        attrs,
        layout: q.layout,
        queueDirectory: q.layout.queueDirectory,
        timeLimit: c.timeLimit ?? 20,
        delimiters: "+",
        exportEnvironment: [],
        importEnvironment: [],
        masterCf: `${q.dir}/master.cf`,
        now: () => fixedNow,
      }),
  );
  const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
  try {
    return await withLog(async (lines) => {
      const reply = await sendDeliverRequest(agent.path, {
        flags: c.flags ?? 0,
        queueName: "active",
        queueId: id,
        dataOffset: msg.dataOffset,
        dataSize: msg.size,
        nexthop: c.nexthop ?? "t1.test",
        encoding: "",
        smtputf8: 0,
        sender: msg.sender,
        envid: "",
        ret: 0,
        arrival: msg.arrival,
        active: msg.arrival,
        attrs: c.attrs ?? {},
        recipients: msg.recipients,
      });
      let record = "";
      try {
        record = Deno.readTextFileSync(`${q.dir}/record`);
      } catch {
        // The command never ran.
      }
      return { reply, log: lines.join("\n"), record, bounce, dir: q.dir };
    });
  } finally {
    await agent.close();
    await Deno.remove(q.dir, { recursive: true });
  }
}

/** The recorded command-line arguments. */
function args(record: string): string[] {
  return record.split("----\n")[0].split("\n").filter(Boolean).map((l) => l.slice(1, -1));
}

/** The recorded standard input. */
function input(record: string): string {
  return record.split("----\n")[1] ?? "";
}

const body = ["Subject: test", "From: a@x.example", "", "body line", ".dot line", "From me"];

Deno.test("pipe runs argv= with the request's macros and the message on stdin", opts, async () => {
  const r = await deliver({
    operands: [
      "user=" + runAs,
      "argv=SCRIPT",
      "${sender}",
      "${recipient}",
      "${nexthop}",
      "${extension}",
      "${mailbox}",
      "${user}",
      "${domain}",
      "${original_recipient}",
      "x${client_address}x",
    ],
    body,
  });
  assertEquals(args(r.record), [
    "sender@x.example",
    "User+ext@t1.test",
    "t1.test",
    "ext",
    "User+ext",
    "User",
    "t1.test",
    "User+ext@t1.test",
    "xx",
  ]);
  assertEquals(
    input(r.record),
    "Subject: test\nFrom: a@x.example\n\nbody line\n.dot line\nFrom me\n",
  );
  assertEquals([...r.reply.results.values()], ["sent"]);
  assertStringIncludes(r.log, "to=<User+ext@t1.test>, relay=p1, delay=");
  assertStringIncludes(
    r.log,
    "dsn=2.0.0, status=sent (delivered via p1 service (recorded 9 args))",
  );
});

Deno.test("pipe passes ${size}, ${queue_id} and the client and SASL macros", opts, async () => {
  const r = await deliver({
    operands: [
      "user=" + runAs,
      "argv=SCRIPT",
      "${size}",
      "${queue_id}",
      "${client_hostname}",
      "${client_address}",
      "${client_port}",
      "${client_helo}",
      "${client_protocol}",
      "${sasl_method}",
      "${sasl_username}",
      "${sasl_sender}",
    ],
    attrs: {
      log_client_name: "c.example",
      log_client_address: "192.0.2.1",
      log_client_port: "2525",
      log_helo_name: "helo.example",
      log_protocol_name: "ESMTP",
      sasl_method: "PLAIN",
      sasl_username: "joe",
      sasl_sender: "s@x",
    },
  });
  const a = args(r.record);
  assert(/^\d+$/.test(a[0]) && Number(a[0]) > 0, a[0]);
  assert(/^[0-9A-Z]+$/.test(a[1]), a[1]);
  assertEquals(a.slice(2), [
    "c.example",
    "192.0.2.1",
    "2525",
    "helo.example",
    "ESMTP",
    "PLAIN",
    "joe",
    "s@x",
  ]);
});

Deno.test(
  "pipe flags F, R, O and D put the envelope lines first, in Postfix's order",
  opts,
  async () => {
    const r = await deliver({ operands: ["flags=FROD", "user=" + runAs, "argv=SCRIPT"], body });
    assertEquals(
      input(r.record).split("\n").slice(0, 5),
      [
        `From sender@x.example  ${asctime(fixedNow)}`,
        "Return-Path: <sender@x.example>",
        "X-Original-To: User+ext@t1.test",
        "Delivered-To: User+ext@t1.test",
        "Subject: test",
      ],
    );
    assertEquals(asctime(fixedNow), "Tue Nov 24 19:06:35 2026");
  },
);

Deno.test(
  "pipe gives the null sender as MAILER-DAEMON in From_ and null_sender in Return-Path",
  opts,
  async () => {
    const r = await deliver({
      operands: ["flags=FR", "null_sender=", "user=" + runAs, "argv=SCRIPT", "${sender}"],
      sender: "",
    });
    assertEquals(args(r.record), [""]);
    assertEquals(input(r.record).split("\n").slice(0, 2), [
      `From MAILER-DAEMON  ${asctime(fixedNow)}`,
      "Return-Path: <>",
    ]);
    const d = await deliver({
      operands: ["flags=R", "user=" + runAs, "argv=SCRIPT", "${sender}"],
      sender: "",
    });
    assertEquals(args(d.record), ["MAILER-DAEMON"]);
    assertEquals(input(d.record).split("\n")[0], "Return-Path: <MAILER-DAEMON>");
  },
);

Deno.test(
  "pipe flags . and > escape lines, B adds a blank line, eol= ends lines",
  opts,
  async () => {
    const r = await deliver({
      operands: ["flags=.>B", "eol=\\r\\n", "user=" + runAs, "argv=SCRIPT"],
      body,
    });
    assertEquals(
      input(r.record),
      "Subject: test\r\nFrom: a@x.example\r\n\r\nbody line\r\n..dot line\r\n>From me\r\n\r\n",
    );
  },
);

Deno.test("pipe h, q and u flags fold and quote command-line addresses", opts, async () => {
  const r = await deliver({
    operands: [
      "flags=hqu",
      "user=" + runAs,
      "argv=SCRIPT",
      "${sender}",
      "${recipient}",
      "${nexthop}",
    ],
    sender: "s p@x.example",
    recipients: ["Mixed Case@T1.TEST"],
    nexthop: "NH.Example",
  });
  assertEquals(args(r.record), ['"s p"@x.example', '"mixed case"@t1.test', "nh.example"]);
});

Deno.test("pipe repeats recipient arguments per recipient and reports each", opts, async () => {
  const r = await deliver({
    operands: ["user=" + runAs, "argv=SCRIPT", "${sender}", "${recipient}", "${user}"],
    recipients: ["a@t2.test", "c@t2.test"],
  });
  assertEquals(args(r.record), ["sender@x.example", "a@t2.test", "c@t2.test", "a", "c"]);
  assertEquals([...r.reply.results.values()], ["sent", "sent"]);
  assertStringIncludes(r.log, "to=<a@t2.test>, relay=p1");
  assertStringIncludes(r.log, "to=<c@t2.test>, relay=p1");
});

Deno.test(
  "pipe defers several recipients for flag D or O with Postfix's warning",
  opts,
  async () => {
    for (const flag of ["D", "O"]) {
      const r = await deliver({
        operands: [`flags=${flag}`, "user=" + runAs, "argv=SCRIPT"],
        recipients: ["a@t2.test", "b@t2.test"],
      });
      assertEquals(r.record, "");
      assertEquals([...r.reply.results.values()], ["deferred", "deferred"]);
      assertStringIncludes(r.log, "dsn=4.3.5, status=deferred (mail system configuration error)");
      assertStringIncludes(
        r.log,
        `warning: pipe flag \`${flag}' requires p1_destination_recipient_limit = 1`,
      );
    }
  },
);

Deno.test("pipe flag D bounces a message already delivered to the recipient", opts, async () => {
  const r = await deliver({
    operands: ["flags=D", "user=" + runAs, "argv=SCRIPT"],
    recipients: ["U@T13.test"],
    body: ["Delivered-To: u@t13.test", "Subject: loop", "", "x"],
  });
  assertEquals(r.record, "");
  assertStringIncludes(r.log, "dsn=5.4.6, status=bounced (mail forwarding loop for U@T13.test)");
  assertEquals(r.bounce.calls[0].log, "bounce");
});

Deno.test("pipe bounces a message over size= without running the command", opts, async () => {
  const r = await deliver({ operands: ["size=10", "user=" + runAs, "argv=SCRIPT"] });
  assertEquals(r.record, "");
  assertStringIncludes(r.log, "dsn=5.2.3, status=bounced (message too large)");
  // The pipe's own verdict has no Diagnostic-Code.
  assertEquals(r.bounce.calls[0].dsn?.diagType, "");
  const ok = await deliver({ operands: ["size=100000", "user=" + runAs, "argv=SCRIPT"] });
  assertStringIncludes(ok.log, "status=sent");
});

Deno.test(
  "pipe maps exit statuses to bounce or defer with Postfix's DSN and text",
  opts,
  async () => {
    const cases: [string, string, string, string][] = [
      ["echo later; exit 75", "deferred", "4.3.0", "temporary failure. Command output: later "],
      ["echo who; exit 67", "bounced", "5.1.1", "user unknown. Command output: who "],
      ["exit 69", "bounced", "5.3.0", "service unavailable"],
      ["echo out; exit 77", "bounced", "5.7.0", "permission denied. Command output: out "],
      [
        "echo nope; exit 3",
        "bounced",
        "5.3.0",
        'Command died with status 3: "/bin/sh". Command output: nope ',
      ],
      ["echo 5.2.2 mailbox is full; exit 75", "bounced", "5.2.2", "mailbox is full "],
      // The reference: a signal defers with 4.3.0.
      [
        "echo dying; kill -TERM $$$$", // argv= turns $$ into $
        "deferred",
        "4.3.0",
        'Command died with signal 15: "/bin/sh". Command output: dying ',
      ],
    ];
    for (const [script, outcome, dsn, text] of cases) {
      const r = await deliver({ operands: ["user=" + runAs, "argv=/bin/sh", "-c", script] });
      assertEquals([...r.reply.results.values()], [outcome], script);
      assertStringIncludes(r.log, `dsn=${dsn}, status=${outcome} (${text})`);
      const call = r.bounce.calls[0];
      assertEquals(call.log, outcome === "bounced" ? "bounce" : "defer");
      assertEquals(call.dsn?.status, dsn);
      assertEquals(call.dsn?.reason, text);
      assertEquals(call.dsn?.diagType, "x-unix");
    }
  },
);

Deno.test(
  "pipe bounces a command over its time limit, its process group killed",
  opts,
  async () => {
    const r = await deliver({
      operands: ["user=" + runAs, "argv=/bin/sh", "-c", "echo working; sleep 60"],
      timeLimit: 1,
    });
    assertStringIncludes(r.log, "warning: pipe_command_read: read time limit exceeded");
    assertStringIncludes(
      r.log,
      'dsn=5.3.0, status=bounced (Command time limit exceeded: "/bin/sh". Command output: working )',
    );
  },
);

Deno.test("pipe runs the command as user= in the queue directory or directory=", opts, async () => {
  const r = await deliver({ operands: ["user=" + runAs, "argv=SCRIPT"] });
  const [uid, gid, cwd] = r.record.split("----\n")[2].trim().split("\n");
  if (root) {
    const id = (flag: string) =>
      new TextDecoder().decode(new Deno.Command("id", { args: [flag, runAs] }).outputSync().stdout)
        .trim();
    assertEquals([uid, gid], [id("-u"), id("-g")]);
  } else {
    assertEquals([uid, gid], [String(Deno.uid()), String(Deno.gid())]);
  }
  assertEquals(cwd, `${r.dir}/queue`);
  const d = await deliver({ operands: ["directory=/tmp", "user=" + runAs, "argv=SCRIPT"] });
  assertEquals(d.record.split("----\n")[2].trim().split("\n")[2], "/tmp");
});

Deno.test(
  "pipe chroot= runs the command in the jail, at its root or in directory=",
  opts,
  async () => {
    if (!root) return; // chroot(2) needs root.
    const jail = await makeJail();
    try {
      const r = await deliver({
        operands: [`chroot=${jail}`, "user=" + runAs, "argv=/bin/sh", "-c", "cat > /work/in; pwd"],
        body: ["Subject: jailed", "", "x"],
      });
      assertStringIncludes(r.log, "status=sent (delivered via p1 service (/))");
      assertEquals(Deno.readTextFileSync(`${jail}/work/in`), "Subject: jailed\n\nx\n");
      const d = await deliver({
        operands: [
          `chroot=${jail}`,
          "directory=/work",
          "user=" + runAs,
          "argv=/bin/sh",
          "-c",
          "pwd",
        ],
      });
      assertStringIncludes(d.log, "status=sent (delivered via p1 service (/work))");
    } finally {
      await Deno.remove(jail, { recursive: true });
    }
  },
);

Deno.test("pipe answers sendmail -bv without running the command", opts, async () => {
  const r = await deliver({
    operands: ["user=" + runAs, "argv=SCRIPT", "${recipient}"],
    flags: DeliverFlag.USR_VRFY,
  });
  assertEquals(r.record, "");
  // The reference: "status=deliverable (delivers to command: /bin/true)".
  assertStringIncludes(r.log, `status=deliverable (delivers to command: ${r.dir}/record.sh)`);
  assertEquals(r.bounce.calls[0].log, "trace");
});

Deno.test("pipe answers a verify probe without running the command", opts, async () => {
  const probes: [string, number, string][] = [];
  const r = await deliver({
    operands: ["user=" + runAs, "argv=SCRIPT"],
    flags: DeliverFlag.MTA_VRFY,
    verify: (address, status, why) => {
      probes.push([address, status, why]);
      return Promise.resolve(true);
    },
  });
  assertEquals(r.record, "");
  assertEquals(probes.length, 1);
  assertEquals(probes[0][0], "User+ext@t1.test");
  assertStringIncludes(probes[0][2], "delivers to command: ");
});

Deno.test("pipe defers for an unknown macro with the master.cf warning", opts, async () => {
  const r = await deliver({ operands: ["user=" + runAs, "argv=SCRIPT", "${bogus}"] });
  assertEquals(r.record, "");
  assertStringIncludes(r.log, `master.cf: service p1: unknown macro name: "bogus"`);
  assertStringIncludes(r.log, "dsn=4.3.5, status=deferred (mail system configuration error)");
});

Deno.test("successText() shows at most 100 characters of output, trailing blanks trimmed", () => {
  assertEquals(successText("p1", ""), "delivered via p1 service");
  assertEquals(successText("p1", "args: a b "), "delivered via p1 service (args: a b)");
  assertEquals(successText("p1", "  lead"), "delivered via p1 service (  lead)");
  assertEquals(
    successText("p1", "c".repeat(4096)),
    `delivered via p1 service (${"c".repeat(100)})`,
  );
});

Deno.test(
  "pipe reports a success as relayed, or delivered with flag X (sendmail -v trace)",
  opts,
  async () => {
    for (const [flags, action] of [[[], "relayed"], [["flags=X"], "delivered"]] as const) {
      const r = await deliver({
        operands: ["user=" + runAs, ...flags, "argv=SCRIPT"],
        flags: DeliverFlag.RECORD,
      });
      assertEquals([...r.reply.results.values()], ["sent"]);
      const traced = r.bounce.calls.filter((c) => c.kind === "append" && c.log === "trace");
      assertEquals(traced.map((c) => c.dsn?.action), [action]);
    }
  },
);
