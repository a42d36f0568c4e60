// local(8) against the reference Postfix (root and the postfix package
// needed, skipped otherwise): the same queue files, addressed to aliases of
// every kind, users, extensions and unknown users, go through a throwaway
// reference instance and a Posthorn instance with the same main.cf
// settings; the local(8) log lines (queue ids, delays and paths aside) and
// the warnings must be the same.

import { assert, assertEquals } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../../lib/queue/record.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";
import { buildAliasTable } from "../../../maps/aliases.ts";
import { Instance } from "../master/instance.ts";

const launcher = `${projectRoot}tests/daemons/local/launch.ts`;

const recipients = [
  "team",
  "ping",
  "inc",
  "missing",
  "relative",
  "files",
  "list",
  "mixed",
  "cmdfail",
  "cmd67",
  "dupext",
  "nosuch",
  "Nosuch",
  "posthorn-test",
  "posthorn-test+ext",
].map((r) => `${r}@example.com`);

function aliases(dir: string): string {
  return [
    "team: posthorn-test, friend@remote.test",
    "ping: pong",
    "pong: ping",
    `inc: :include:${dir}/members`,
    `missing: :include:${dir}/nothere`,
    "relative: :include:members",
    `files: ${dir}/out/archive, "|cat > ${dir}/out/cmd.out", ${dir}/out/md/`,
    "list: posthorn-test",
    "owner-list: root",
    'mixed: posthorn-test, "|exit 75"',
    'cmdfail: "|exit 1"',
    'cmd67: "|exit 67"',
    "dupext: posthorn-test+a, posthorn-test+b",
  ].join("\n") + "\n";
}

function mainCf(dir: string): string[] {
  return [
    "compatibility_level = 3.6",
    "myhostname = mx.example.com",
    "mydomain = example.com",
    "myorigin = example.com",
    "mydestination = example.com",
    "recipient_delimiter = +",
    `alias_maps = hash:${dir}/aliases`,
    `mail_spool_directory = ${dir}/spool`,
    "transport_maps = inline:{remote.test=discard:}",
    "mailbox_delivery_lock = fcntl",
  ];
}

const masterCf = `qmgr      unix  n       -       n       300     1       qmgr
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
`;

/** The files local(8) and the test share: aliases, an :include: list, a writable out/. */
function prepare(dir: string): void {
  Deno.chmodSync(dir, 0o755);
  for (const d of ["spool", "out"]) {
    Deno.mkdirSync(`${dir}/${d}`, { recursive: true });
    Deno.chmodSync(`${dir}/${d}`, 0o1777);
  }
  Deno.writeTextFileSync(
    `${dir}/members`,
    `posthorn-test\n${dir}/out/inc.out\n"|cat > ${dir}/out/inc.cmd"\n`,
  );
  Deno.writeTextFileSync(`${dir}/aliases`, aliases(dir));
  // posthorn-test's .forward (forward_path points here: the user has no home).
  Deno.mkdirSync(`${dir}/fwd`);
  Deno.writeTextFileSync(
    `${dir}/fwd/posthorn-test`,
    '\\posthorn-test, friend@remote.test, "|cat > /dev/null"\n',
  );
}

/** One queue file per recipient, put in incoming; qmgr is woken. */
async function submit(queueDir: string, owner: number, recipients: string[]): Promise<void> {
  const layout = { queueDirectory: queueDir, hashQueueNames: [], hashQueueDepth: 1 };
  const now = Math.floor(Date.now() / 1000);
  let n = 0;
  for (const rcpt of recipients) {
    const id = `C${(0x200000 + n++).toString(16).toUpperCase()}`;
    const env = joinRecords([
      encodeRecord("T", `${now} 0`),
      encodeRecord("A", "rewrite_context=local"),
      encodeRecord("S", "sender@example.org"),
      encodeRecord("O", rcpt),
      encodeRecord("R", rcpt),
    ]);
    const content = ["Subject: test", "From: sender@example.org", "", "From here."]
      .map((l) => encodeRecord("N", l));
    const size = content.reduce((s, c) => s + c.length, 0);
    const head = (offset: number) =>
      encodeRecord(
        "C",
        [size, offset, 1, 0, size, 0].map((v) => String(v).padStart(15, " ")).join(" "),
      );
    const mesg = encodeRecord("M", "");
    const offset = head(0).length + env.length + mesg.length;
    const data = joinRecords([
      head(offset),
      env,
      mesg,
      ...content,
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]);
    const staged = `${queueDir}/maildrop/${id}.tmp`;
    Deno.writeFileSync(staged, data, { mode: 0o700 });
    Deno.chmodSync(staged, 0o700);
    Deno.chownSync(staged, owner, null);
    Deno.renameSync(staged, queueFilePath(layout, "incoming", id));
  }
  await sendTrigger(`${queueDir}/public/qmgr`, "I");
}

/** Waits until incoming and active are empty and the log has stopped growing. */
async function settle(queueDir: string, log: () => string): Promise<void> {
  const busy = () =>
    ["incoming", "active"].some((q) => [...Deno.readDirSync(`${queueDir}/${q}`)].length > 0);
  let last = -1;
  for (let t = 0; t < 60_000; t += 250) {
    await new Promise((r) => setTimeout(r, 250));
    const size = log().length;
    if (!busy() && size === last) return;
    last = size;
  }
}

/** local(8)'s lines, normalized and sorted: no queue ids, delays or temporary paths. */
function localLines(log: string, dir: string): string[] {
  return log.split("\n")
    .filter((l) => /\/local\[\d+\]: /.test(l))
    .map((l) =>
      l.replace(/^.*?\/local\[\d+\]: /, "")
        .replace(/^\w+: /, "ID: ")
        .replace(/delay=[\d.]+, delays=[\d./]+, /, "")
        .replace(/forwarded as \w+/, "forwarded as ID")
        .replaceAll(dir, "DIR")
    )
    .sort();
}

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

const referenceReady = Deno.uid() === 0 && uidOf("postfix") !== undefined &&
  (() => {
    try {
      return Deno.statSync("/usr/lib/postfix/sbin/local").isFile;
    } catch {
      return false;
    }
  })();

/** What the alias deliveries left in out/: owner and normalized content of each file. */
function outFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of ["archive", "cmd.out"]) {
    const st = Deno.statSync(`${dir}/out/${name}`);
    out.push(`${name} uid=${st.uid} mode=${(st.mode! & 0o777).toString(8)}`);
    out.push(...normalize(Deno.readTextFileSync(`${dir}/out/${name}`), dir));
  }
  const md = [...Deno.readDirSync(`${dir}/out/md/new`)];
  out.push(
    `maildir files=${md.length} uid=${Deno.statSync(`${dir}/out/md/new/${md[0].name}`).uid}`,
  );
  return out;
}

function normalize(text: string, dir: string): string[] {
  return text.split(/^(?=From )/m).map((m) =>
    m.replace(/^(From \S+ {2}).*$/m, "$1DATE")
      .replace(/\(Post(fix|horn)(, from userid \d+)?\)/g, "(MTA)")
      .replace(/\tid \w+; .*$/gm, "\tid ID; DATE")
      .replace(/^Message-Id: <[^>]*>$/gm, "Message-Id: <ID>")
      .replace(/^Date: .*$/gm, "Date: DATE")
      .replaceAll(dir, "DIR")
  ).sort();
}

/** The messages of posthorn-test's spool mailbox, normalized and sorted. */
function mailbox(dir: string): string[] {
  const text = Deno.readTextFileSync(`${dir}/spool/posthorn-test`);
  return normalize(text, dir);
}

/** One comparison: recipients, main.cf lines beyond mainCf(), what else to compare. */
interface Scenario {
  recipients: string[];
  extra: (dir: string) => string[];
  collect: (dir: string) => string[];
}

type Outcome = { lines: string[]; mbox: string[]; out: string[] };

/** The reference's log lines and mailbox for the recipients. */
async function referenceRun(sc: Scenario): Promise<Outcome> {
  const dir = await Deno.makeTempDir({ prefix: "local-ref-" });
  const run = (args: string[]) =>
    new Deno.Command("postfix", { args: ["-c", dir, ...args], stdout: "null", stderr: "null" })
      .output();
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
        ...sc.extra(dir),
      ].join("\n") + "\n",
    );
    Deno.writeTextFileSync(
      `${dir}/master.cf`,
      masterCf + "postlog   unix-dgram n  -       n       -       1       postlogd\n",
    );
    const postalias = await new Deno.Command("postalias", {
      args: ["-c", dir, `${dir}/aliases`],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!postalias.success) throw new Error("reference postalias failed");
    await run(["set-permissions"]);
    await run(["start"]);
    await new Promise((r) => setTimeout(r, 500));
    await submit(`${dir}/q`, uidOf("postfix")!, sc.recipients);
    const log = () => Deno.readTextFileSync(`${dir}/maillog`);
    await settle(`${dir}/q`, log);
    return { lines: localLines(log(), dir), mbox: mailbox(dir), out: sc.collect(dir) };
  } finally {
    await run(["stop"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Posthorn's log lines and mailbox for the same recipients. */
async function posthornRun(sc: Scenario): Promise<Outcome> {
  const inst = await Instance.create(masterCf, "");
  try {
    prepare(inst.dir);
    await buildAliasTable(`hash:${inst.dir}/aliases`);
    const flags = "run -A --unstable-ffi --unstable-net";
    Deno.writeTextFileSync(
      `${inst.dir}/main.cf`,
      Deno.readTextFileSync(`${inst.dir}/main.cf`) +
        [
          `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
          ...mainCf(inst.dir),
          ...sc.extra(inst.dir),
        ].join("\n") + "\n",
    );
    const start = await inst.postfix("start");
    if (start.code !== 0) throw new Error(start.stderr);
    await submit(inst.queue, uidOf("posthorn-test")!, sc.recipients);
    await settle(inst.queue, () => inst.readLog());
    return {
      lines: localLines(inst.readLog(), inst.dir),
      mbox: mailbox(inst.dir),
      out: sc.collect(inst.dir),
    };
  } finally {
    await inst.destroy();
  }
}

Deno.test({
  name: "local logs every kind of delivery as the reference does",
  ignore: !referenceReady,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const sc = {
      recipients,
      extra: (dir: string) => [`forward_path = ${dir}/fwd/$user`],
      collect: outFiles,
    };
    const ref = await referenceRun(sc);
    const reference = ref.lines;
    // Every recipient was handled: mailbox, file, command, maildir, forward, bounce, defer.
    for (
      const text of [
        "delivered to mailbox",
        "delivered to file",
        "delivered to maildir",
        "forwarded as ID",
        "status=bounced",
        "status=deferred",
        "delivered to command: cat > /dev/null",
      ]
    ) {
      assert(reference.some((l) => l.includes(text)), `reference: no ${text}: ${reference}`);
    }
    const ours = await posthornRun(sc);
    assertEquals(ours.lines, reference);
    assertEquals(ours.mbox, ref.mbox);
    // Files and commands of a root-owned alias ran as default_privs (nobody).
    assertEquals(ours.out, ref.out);
  },
});

/** The environment a mailbox_command saw, without what the daemons' own environment decides. */
function commandEnv(dir: string): string[] {
  return ["ext", "unknownx"].flatMap((ext) =>
    Deno.readTextFileSync(`${dir}/out/env.${ext}`).split("\n")
      .filter((l) => l && !/^(LANG|MAIL_CONFIG|TZ)=/.test(l))
      // The queue directory's name differs between the two instances.
      .map((l) => l.startsWith("PWD=") ? "PWD=QUEUE" : `${ext}: ${l.replaceAll(dir, "DIR")}`)
      .sort()
  );
}

Deno.test({
  name: "luser_relay and mailbox_command run as the reference runs them",
  ignore: !referenceReady,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const sc: Scenario = {
      recipients: ["posthorn-test+ext@example.com", "unknownx@example.com"],
      extra: (dir) => [
        "luser_relay = posthorn-test+$local",
        `mailbox_command = env > ${dir}/out/env.$EXTENSION; cat >> ${dir}/spool/posthorn-test`,
      ],
      collect: commandEnv,
    };
    const ref = await referenceRun(sc);
    assert(ref.out.includes("ext: USER=posthorn-test"), String(ref.out));
    const ours = await posthornRun(sc);
    assertEquals(ours.lines, ref.lines);
    assertEquals(ours.out, ref.out);
  },
});
