// VERP end to end: sendmail -XV → pickup → cleanup → qmgr → a pipe service
// that records the envelope sender of each delivery. A VERP message goes
// out one recipient per delivery, each with its own sender
// (list+user=domain@origin; without a domain list+user@origin; the
// original recipient of an alias), and its non-delivery notices go one per
// recipient to that recipient's VERP sender. The expected outcome is the
// reference Postfix's (recorded from it); as root with the postfix package
// installed, a throwaway reference instance runs the same mail and must
// give the same outcome.

import { assert, assertEquals } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";

const launcher = `${projectRoot}tests/daemons/pipe/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

/** The services both instances run; `rec` records each delivery. */
function masterCf(dir: string): string {
  return `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
rec       unix  -       n       n       -       -       pipe
  user=nobody argv=${dir}/rec.sh \${sender} \${recipient} \${original_recipient}
`;
}

function mainCf(dir: string): string[] {
  return [
    "compatibility_level = 3.6",
    "myhostname = mx.example.com",
    "mydomain = example.com",
    "myorigin = example.com",
    "mydestination =",
    `transport_maps = texthash:${dir}/transport`,
    "virtual_alias_maps = inline:{alias@x.org=target@y.org}",
    "notify_classes =",
  ];
}

/** The recorder, the transport table and a folder the command (as nobody) can write. */
function prepare(dir: string): void {
  Deno.chmodSync(dir, 0o755);
  Deno.mkdirSync(`${dir}/out`);
  Deno.chmodSync(`${dir}/out`, 0o1777);
  Deno.writeTextFileSync(
    `${dir}/rec.sh`,
    `#!/bin/sh\necho "S=$1 R=$2 O=$3" >> ${dir}/out/rec\ncat > "$(mktemp ${dir}/out/msg.XXXXXX)"\n`,
  );
  Deno.chmodSync(`${dir}/rec.sh`, 0o755);
  Deno.writeTextFileSync(
    `${dir}/transport`,
    "x.org rec:\ny.org rec:\nexample.com rec:\nbad.org error:5.1.1 no such user\n",
  );
}

/** The submissions: sendmail arguments. */
const submissions = [
  ["-XV", "-f", "list@example.com", "a@x.org", "b@y.org", "noat", "alias@x.org"],
  ["-XV-=", "-f", "owner-l@example.com", "c@x.org"],
  ["-XV", "-f", "list@example.com", "u1@bad.org", "u2@bad.org", "ok@x.org"],
];

/** One run: extra main.cf lines, the submissions, how many deliveries they make. */
interface Scenario {
  extra: string[];
  submissions: string[][];
  deliveries: number;
}

/** Deliveries the submissions make: 4 + 1 + 1, and the 2 notices. */
const verpScenario: Scenario = { extra: [], submissions, deliveries: 8 };

/** disable_verp_bounces = yes: the bouncing message only; 1 delivery and 1 notice. */
const plainBounceScenario: Scenario = {
  extra: ["disable_verp_bounces = yes"],
  submissions: [submissions[2]],
  deliveries: 2,
};

/** What the reference did (sorted). */
const referenceRec = [
  "S=MAILER-DAEMON R=list+u1=bad.org@example.com O=list+u1=bad.org@example.com",
  "S=MAILER-DAEMON R=list+u2=bad.org@example.com O=list+u2=bad.org@example.com",
  "S=list+a=x.org@example.com R=a@x.org O=a@x.org",
  "S=list+alias=x.org@example.com R=target@y.org O=alias@x.org",
  "S=list+b=y.org@example.com R=b@y.org O=b@y.org",
  "S=list+noat@example.com R=noat@example.com O=noat",
  "S=list+ok=x.org@example.com R=ok@x.org O=ok@x.org",
  "S=owner-l-c=x.org@example.com R=c@x.org O=c@x.org",
];

const referenceNotices = [
  [
    "To: list+u1=bad.org@example.com",
    "X-Postfix-Sender: rfc822; list@example.com",
    "Final-Recipient: rfc822; u1@bad.org",
    "Return-Path: <list@example.com>",
  ],
  [
    "To: list+u2=bad.org@example.com",
    "X-Postfix-Sender: rfc822; list@example.com",
    "Final-Recipient: rfc822; u2@bad.org",
    "Return-Path: <list@example.com>",
  ],
];

interface Outcome {
  rec: string[];
  notices: string[][];
  /** "sender non-delivery notification" lines of the bouncing message. */
  noticeLines: number;
}

function recLines(dir: string): string[] {
  try {
    return Deno.readTextFileSync(`${dir}/out/rec`).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

function collect(dir: string, log: string): Outcome {
  const notices: string[][] = [];
  for (const e of Deno.readDirSync(`${dir}/out`)) {
    if (!e.name.startsWith("msg.")) continue;
    const text = Deno.readTextFileSync(`${dir}/out/${e.name}`);
    if (!text.includes("X-Postfix-Sender:")) continue;
    notices.push(
      text.split("\n").filter((l) => /^(To|X-Postfix-Sender|Final-Recipient|Return-Path):/.test(l)),
    );
  }
  notices.sort((a, b) => a[0].localeCompare(b[0]));
  const bouncing = /(\w+): from=<list@example.com>, size=\d+, nrcpt=3/.exec(log)?.[1] ?? "none";
  const noticeLines =
    log.split("\n").filter((l) => l.includes(`${bouncing}: sender non-delivery notification:`))
      .length;
  return { rec: recLines(dir).sort(), notices, noticeLines };
}

/** Waits for every delivery, then a moment for stray extra ones. */
async function settle(dir: string, deliveries: number): Promise<void> {
  await waitFor(() => recLines(dir).length >= deliveries, 40_000);
  await new Promise((r) => setTimeout(r, 500));
}

async function posthornRun(sc: Scenario): Promise<Outcome> {
  const inst = await Instance.create(masterCf(""), "");
  try {
    prepare(inst.dir);
    Deno.writeTextFileSync(`${inst.dir}/master.cf`, masterCf(inst.dir));
    Deno.writeTextFileSync(
      `${inst.dir}/main.cf`,
      Deno.readTextFileSync(`${inst.dir}/main.cf`) +
        [
          `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
          "hash_queue_names =",
          ...mainCf(inst.dir),
          ...sc.extra,
        ].join("\n") + "\n",
    );
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    for (const args of sc.submissions) {
      const sent = await runProgram("sendmail", args, {
        stdin: "Subject: verp\n\nBody.\n",
        env: { MAIL_CONFIG: inst.dir },
      });
      assertEquals(sent.code, 0, sent.stderr);
    }
    // Wake pickup until the maildrop is empty (it may not listen yet).
    for (let i = 0; i < 60 && [...Deno.readDirSync(`${inst.queue}/maildrop`)].length; i++) {
      await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
      await new Promise((r) => setTimeout(r, 500));
    }
    await settle(inst.dir, sc.deliveries);
    return collect(inst.dir, inst.readLog());
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
}

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

const referenceReady = Deno.uid() === 0 && uidOf("postfix") !== undefined &&
  (() => {
    try {
      return Deno.statSync("/usr/lib/postfix/sbin/pipe").isFile;
    } catch {
      return false;
    }
  })();

async function referenceRun(sc: Scenario): Promise<Outcome> {
  const dir = await Deno.makeTempDir({ prefix: "verp-ref-" });
  const run = (cmd: string, args: string[], stdin?: string) => {
    const child = new Deno.Command(cmd, {
      args,
      env: { MAIL_CONFIG: dir },
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      w.write(new TextEncoder().encode(stdin)).then(() => w.close());
    }
    return child.status;
  };
  try {
    prepare(dir);
    Deno.mkdirSync(`${dir}/q`);
    Deno.mkdirSync(`${dir}/d`);
    Deno.chownSync(`${dir}/d`, uidOf("postfix")!, null);
    Deno.writeTextFileSync(
      `${dir}/main.cf`,
      [
        `queue_directory = ${dir}/q`,
        `data_directory = ${dir}/d`,
        `maillog_file = ${dir}/maillog`,
        `maillog_file_prefixes = ${dir}`,
        "inet_interfaces = loopback-only",
        ...mainCf(dir),
        ...sc.extra,
      ].join("\n") + "\n",
    );
    Deno.writeTextFileSync(
      `${dir}/master.cf`,
      masterCf(dir) + "postlog   unix-dgram n  -       n       -       1       postlogd\n",
    );
    await run("postfix", ["-c", dir, "set-permissions"]);
    await run("postfix", ["-c", dir, "start"]);
    for (const args of sc.submissions) {
      const status = await run("sendmail", args, "Subject: verp\n\nBody.\n");
      assert(status.success, `reference sendmail ${args.join(" ")}`);
    }
    await run("postkick", ["-c", dir, "public", "pickup", "W"]);
    await settle(dir, sc.deliveries);
    return collect(dir, Deno.readTextFileSync(`${dir}/maillog`));
  } finally {
    await run("postfix", ["-c", dir, "stop"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "sendmail -XV: one delivery per recipient with its VERP sender, one notice per bounce",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ours = await posthornRun(verpScenario);
    assertEquals(ours.rec, referenceRec);
    assertEquals(ours.notices, referenceNotices);
    assertEquals(ours.noticeLines, 2);
  },
});

Deno.test({
  name: "sendmail -XV: the reference Postfix delivers and bounces the same way",
  ignore: !referenceReady,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ref = await referenceRun(verpScenario);
    assertEquals(ref.rec, referenceRec);
    assertEquals(ref.notices, referenceNotices);
    assertEquals(ref.noticeLines, 2);
  },
});

/** What the reference did with disable_verp_bounces = yes. */
const plainRec = [
  "S=MAILER-DAEMON R=list@example.com O=list@example.com",
  "S=list+ok=x.org@example.com R=ok@x.org O=ok@x.org",
];

const plainNotices = [[
  "To: list@example.com",
  "X-Postfix-Sender: rfc822; list@example.com",
  "Final-Recipient: rfc822; u1@bad.org",
  "Final-Recipient: rfc822; u2@bad.org",
  "Return-Path: <list@example.com>",
]];

Deno.test({
  name: "disable_verp_bounces = yes: VERP deliveries, one notice to the sender for all",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ours = await posthornRun(plainBounceScenario);
    assertEquals(ours.rec, plainRec);
    assertEquals(ours.notices, plainNotices);
    assertEquals(ours.noticeLines, 1);
    if (!referenceReady) return;
    const ref = await referenceRun(plainBounceScenario);
    assertEquals(ref, ours);
  },
});
