// virtual against the reference: the same recipients (maildir, mbox, unknown
// user, mailbox over virtual_mailbox_limit, null sender) delivered by the
// reference Postfix's virtual(8) in a temporary instance and by Posthorn's,
// compared on status text and on the lines each prepends and appends. Runs
// only as root with the reference installed (it starts the reference's
// master on a private queue, without any network listener).

import { assertEquals } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { DeliverySession } from "../../../lib/deliver/agent.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { deliverVirtual, settingsFromConfig } from "../../../daemons/virtual/mod.ts";
import { makeQueue, recordingBounce, withLog, writeMessage } from "../qmgr/helpers.ts";
import { testIdentity } from "../../lib/mailbox/fixture.ts";

const postfix = "/usr/sbin/postfix";
const sendmail = "/usr/sbin/sendmail";
const masterDist = "/usr/share/postfix/master.cf.dist";
const services = new Set([
  "pickup",
  "cleanup",
  "qmgr",
  "rewrite",
  "bounce",
  "defer",
  "trace",
  "virtual",
  "postlog",
  "error",
  "retry",
]);

function available(): boolean {
  if (Deno.uid() !== 0) return false;
  try {
    return Deno.statSync(postfix).isFile && Deno.statSync(masterDist).isFile &&
      new Deno.Command("id", { args: ["postfix"], stdout: "null", stderr: "null" }).outputSync()
        .success;
  } catch {
    return false;
  }
}

/** The per-recipient settings both sides use. */
function virtualSettings(base: string, uid: number, gid: number): string {
  return `virtual_mailbox_base = ${base}
virtual_mailbox_maps = inline:{ {alice@example.net = alice/}, {bob@example.net = bob}, {carol@example.net = carol} }
virtual_uid_maps = static:${uid}
virtual_gid_maps = static:${gid}
virtual_minimum_uid = 100
virtual_mailbox_limit = 3000
message_size_limit = 3000
recipient_delimiter = +
`;
}

/** carol's mailbox is nearly full, so that the next message passes the limit. */
function prepareBase(base: string, uid: number, gid: number): void {
  Deno.mkdirSync(base, { recursive: true });
  Deno.chownSync(base, uid, gid);
  const carol = `${base}/carol`;
  Deno.writeTextFileSync(carol, "x".repeat(2900) + "\n", { mode: 0o600 });
  Deno.chownSync(carol, uid, gid);
}

const recipients = [
  "alice+ext@example.net",
  "bob@example.net",
  "dave@example.net",
  "carol@example.net",
];
const body = "Subject: compare\n\nFrom the body.\n>From kept\n";

/** Status texts by recipient, paths replaced by BASE. */
function statuses(log: string, base: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (
    const m of log.matchAll(
      /to=<([^>]+)>, relay=virtual, .*?dsn=([\d.]+), status=(\w+) \((.*)\)$/gm,
    )
  ) {
    out[m[1]] = `${m[2]} ${m[3]} ${m[4].replaceAll(base, "BASE")}`;
  }
  return out;
}

/**
 * The lines each delivery adds around a message: the From_ line's shape, the
 * prepended headers, the end; one list per message, in a fixed order (the
 * reference's queue manager may deliver the two messages in either order).
 */
function envelopeLines(text: string, mbox: boolean): string[][] {
  // Only an mbox quotes body lines, so only there does "From " separate messages.
  const messages = mbox ? text.split(/^(?=From )/m) : [text];
  return messages.map((m) => {
    const lines = m.split("\n");
    const separator = lines[0].startsWith("From ")
      ? [lines[0].replace(/ {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/, "  DATE")]
      : [];
    const headers = lines.filter((l) => /^(Return-Path|X-Original-To|Delivered-To):/.test(l));
    return [...separator, ...headers, ...lines.slice(-4)];
  }).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function runReference(dir: string, uid: number, gid: number) {
  const cf = `${dir}/cf`;
  const base = `${dir}/vmail`;
  Deno.mkdirSync(cf, { recursive: true });
  Deno.mkdirSync(`${dir}/queue`);
  Deno.mkdirSync(`${dir}/data`);
  new Deno.Command("chown", { args: ["postfix", `${dir}/data`] }).outputSync();
  prepareBase(base, uid, gid);
  Deno.writeTextFileSync(
    `${cf}/main.cf`,
    `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = ref.example.com
mydestination =
virtual_mailbox_domains = example.net
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
${virtualSettings(base, uid, gid)}`,
  );
  const master = Deno.readTextFileSync(masterDist).split("\n")
    .filter((l) => services.has(l.split(/\s+/)[0]) && !l.startsWith("#"))
    .map((l) => {
      const f = l.split(/\s+/);
      f[4] = "n"; // no chroot
      return f.join(" ");
    });
  Deno.writeTextFileSync(`${cf}/master.cf`, master.join("\n") + "\n");
  const env = { MAIL_CONFIG: cf };
  const start = await new Deno.Command(postfix, { args: ["-c", cf, "start"], env }).output();
  if (!start.success) throw new Error("reference postfix did not start");
  try {
    for (const sender of ["s@sender.example", ""]) {
      const rcpts = sender ? recipients : ["bob@example.net"];
      const child = new Deno.Command(sendmail, {
        args: ["-f", sender, ...rcpts],
        env,
        stdin: "piped",
      })
        .spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(body));
      await w.close();
      await child.status;
    }
    const want = recipients.length + 1;
    let log = "";
    for (let i = 0; i < 300; i++) {
      try {
        log = Deno.readTextFileSync(`${dir}/maillog`);
      } catch {
        log = "";
      }
      if ((log.match(/relay=virtual, /g)?.length ?? 0) >= want) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { log, base };
  } finally {
    await new Deno.Command(postfix, { args: ["-c", cf, "stop"], env }).output();
  }
}

async function runOurs(dir: string, uid: number, gid: number) {
  const q = await makeQueue();
  const base = `${dir}/vmail`;
  prepareBase(base, uid, gid);
  const settings = settingsFromConfig(configFromText(q.dir, virtualSettings(base, uid, gid)));
  const lines = body.trimEnd().split("\n");
  let log = "";
  for (const sender of ["s@sender.example", ""]) {
    const id = writeMessage(q, {
      sender,
      recipients: sender ? recipients : ["bob@example.net"],
      body: lines,
    }, "active");
    const msg = parseQueuedMessage(id, Deno.readFileSync(queueFilePath(q.layout, "active", id)));
    const session = new DeliverySession({
      flags: 0,
      queueName: "active",
      queueId: id,
      dataOffset: msg.dataOffset,
      dataSize: msg.size,
      nexthop: "example.net",
      encoding: "",
      smtputf8: 0,
      sender: msg.sender,
      envid: "",
      ret: 0,
      arrival: msg.arrival,
      active: msg.arrival,
      attrs: {},
      recipients: msg.recipients,
    }, { layout: q.layout, bounce: recordingBounce(), resolution: 2 });
    log += await withLog(async (l) => {
      await deliverVirtual(session, settings, q.layout);
      return l.join("\n") + "\n";
    });
    session.close();
  }
  await Deno.remove(q.dir, { recursive: true });
  return { log, base };
}

Deno.test({
  name: "virtual reports and writes what the reference's virtual does",
  ignore: !available(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const id = testIdentity()!;
    const dir = Deno.makeTempDirSync({ prefix: "posthorn-vref-" });
    Deno.chmodSync(dir, 0o755);
    try {
      const ref = await runReference(`${dir}/ref`, id.uid, id.gid);
      const ours = await runOurs(`${dir}/ours`, id.uid, id.gid);
      assertEquals(statuses(ours.log, ours.base), statuses(ref.log, ref.base));
      assertEquals(Object.keys(statuses(ours.log, ours.base)).length, recipients.length);
      assertEquals(
        envelopeLines(Deno.readTextFileSync(`${ours.base}/bob`), true),
        envelopeLines(Deno.readTextFileSync(`${ref.base}/bob`), true),
      );
      const maildir = (base: string) => {
        const dirName = `${base}/alice/new`;
        const [name] = [...Deno.readDirSync(dirName)].map((e) => e.name);
        return {
          name: name.replace(/^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\./, "SEC.VdevIinoMusec."),
          lines: envelopeLines(Deno.readTextFileSync(`${dirName}/${name}`), false),
        };
      };
      assertEquals(maildir(ours.base), maildir(ref.base));
      // The over-limit mailbox is left as it was on both sides.
      assertEquals(
        Deno.statSync(`${ours.base}/carol`).size,
        Deno.statSync(`${ref.base}/carol`).size,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
