// local(8) under the master: sendmail → pickup → cleanup → qmgr → local,
// with an alias list whose remote member is forwarded through cleanup as a
// new message (delivered by discard), and a member delivered to the spool
// mailbox of a real user (posthorn-test when root, this user otherwise).

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { buildAliasTable } from "../../../maps/aliases.ts";
import { userByUid } from "../../../daemons/local/users.ts";

const launcher = `${projectRoot}tests/daemons/local/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

const masterCf = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
`;

Deno.test("sendmail to a local alias list: a spool mailbox delivery and a forwarded copy", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const root = Deno.uid() === 0;
  const inst = await Instance.create(masterCf, "");
  // The recipient: posthorn-test as root (the instance creates it), else this user.
  const user = root ? "posthorn-test" : userByUid(Deno.uid() ?? 0)?.name;
  if (!user) return; // No passwd entry for this uid: nothing to deliver to.
  const spool = `${inst.dir}/spool`;
  Deno.mkdirSync(spool, { mode: 0o1777 });
  Deno.chmodSync(spool, 0o1777);
  Deno.writeTextFileSync(`${inst.dir}/aliases`, `team: ${user}, friend@remote.test\n`);
  await buildAliasTable(`hash:${inst.dir}/aliases`);
  Deno.writeTextFileSync(
    `${inst.dir}/main.cf`,
    Deno.readTextFileSync(`${inst.dir}/main.cf`) + [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination = example.com",
      `alias_maps = hash:${inst.dir}/aliases`,
      `mail_spool_directory = ${spool}`,
      "transport_maps = inline:{remote.test=discard:}",
      "hash_queue_names =",
    ].join("\n") + "\n",
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram("sendmail", ["-f", "someone@sender.example", "team"], {
      stdin: "From: someone@sender.example\nSubject: hello list\n\nFrom the list.\n",
      env: { MAIL_CONFIG: inst.dir },
    });
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const fwd = await waitFor(
      () => /status=sent \(forwarded as (\w+)\)/.exec(inst.readLog()),
      45_000,
    );
    assert(fwd, "not forwarded:\n" + inst.readLog());
    assert(
      await waitFor(() => inst.readLog().includes(`${fwd![1]}: to=<friend@remote.test>`), 20_000),
      inst.readLog(),
    );
    const log = inst.readLog();
    assertMatch(
      log,
      new RegExp(
        `local\\[\\d+\\]: \\w+: to=<${user}@example\\.com>, orig_to=<team>, ` +
          `relay=local, delay=[\\d.]+, delays=[\\d./]+, dsn=2\\.0\\.0, status=sent \\(delivered to mailbox\\)`,
      ),
    );
    assertMatch(
      log,
      /local\[\d+\]: \w+: to=<team@example\.com>, orig_to=<team>, relay=local, .*dsn=2\.0\.0, status=sent \(forwarded as \w+\)/,
    );
    const box = Deno.readTextFileSync(`${spool}/${user}`);
    assertMatch(box, /^From someone@sender\.example {2}/);
    assertStringIncludes(box, "\nReturn-Path: <someone@sender.example>\n");
    assertStringIncludes(box, "\nX-Original-To: team\nDelivered-To: team@example.com\n");
    assertStringIncludes(box, "\n>From the list.\n\n");
    if (root) {
      const st = Deno.statSync(`${spool}/${user}`);
      assertEquals(st.uid, userByUid(st.uid!)?.uid);
      assertEquals(userByUid(st.uid!)?.name, user);
      assertEquals((st.mode ?? 0) & 0o777, 0o600);
    }
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
  }
});
