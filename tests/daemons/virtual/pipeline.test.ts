// The whole path to a virtual mailbox under the master: sendmail → pickup →
// cleanup → qmgr → trivial-rewrite (virtual_mailbox_domains) → virtual →
// a maildir and an mbox under virtual_mailbox_base, owned by the mapped uid
// when the test runs as root.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { testIdentity } from "../../lib/mailbox/fixture.ts";

const launcher = `${projectRoot}tests/daemons/virtual/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

// virtual runs as root (unprivileged = n), as in Postfix's master.cf, so
// that it can write as each recipient's uid.
const masterCf = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
virtual   unix  -       n       n       -       -       virtual
`;

Deno.test("sendmail to virtual mailbox domains lands in a maildir and an mbox", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const id = testIdentity();
  const uid = id?.uid ?? Deno.uid()!;
  const gid = id?.gid ?? Deno.gid()!;
  const vmail = await Deno.makeTempDir({ prefix: "posthorn-vmail-" });
  await Deno.chmod(vmail, 0o755);
  if (id) await Deno.chown(vmail, uid, gid);
  const inst = await Instance.create(
    masterCf,
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "virtual_mailbox_domains = example.net",
      `virtual_mailbox_base = ${vmail}`,
      "virtual_mailbox_maps = inline:{ {alice@example.net = alice/}, {bob@example.net = bob} }",
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      `virtual_minimum_uid = ${Math.min(uid, 100)}`,
      "hash_queue_names =",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram(
      "sendmail",
      ["-f", "someone@sender.example", "alice@example.net", "bob@example.net"],
      {
        stdin: "From: someone@sender.example\nSubject: hello\n\nFrom the body.\n",
        env: { MAIL_CONFIG: inst.dir },
      },
    );
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const done = await waitFor(
      () => (inst.readLog().match(/relay=virtual, .*status=sent/g)?.length ?? 0) >= 2,
      45_000,
    );
    const log = inst.readLog();
    assert(done, "not delivered:\n" + log);
    assertStringIncludes(log, "to=<alice@example.net>, relay=virtual, delay=");
    assertStringIncludes(log, "status=sent (delivered to maildir)");
    assertStringIncludes(log, "to=<bob@example.net>, relay=virtual, delay=");
    assertStringIncludes(log, "status=sent (delivered to mailbox)");
    const newDir = `${vmail}/alice/new`;
    const [file] = [...Deno.readDirSync(newDir)].map((e) => `${newDir}/${e.name}`);
    const maildirText = Deno.readTextFileSync(file);
    assertStringIncludes(maildirText, "Return-Path: <someone@sender.example>\n");
    assertStringIncludes(maildirText, "Delivered-To: alice@example.net\n");
    assertStringIncludes(maildirText, "\nFrom the body.\n");
    const mbox = Deno.readTextFileSync(`${vmail}/bob`);
    assert(mbox.startsWith("From someone@sender.example  "), mbox);
    assertStringIncludes(mbox, "\n>From the body.\n\n");
    for (const path of [file, `${vmail}/bob`]) {
      const info = Deno.statSync(path);
      assertEquals([info.uid, info.gid], [uid, gid]);
    }
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
    await Deno.remove(vmail, { recursive: true }).catch(() => {});
  }
});
