// pipe under a whole instance: sendmail → pickup → cleanup → qmgr → a
// master.cf pipe service → the command, which records what it got. One
// service takes one recipient per command (p1_destination_recipient_limit
// = 1, as its D and O flags need), one takes several in one command, and
// one whose command exits EX_NOUSER bounces its recipient.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";

const launcher = `${projectRoot}tests/daemons/pipe/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

function masterCf(script: string): string {
  return `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
error     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
p1        unix  -       n       n       -       -       pipe
  flags=DRO user=nobody argv=${script} \${recipient} \${sender} \${nexthop} {x \${user} y}
p3        unix  -       n       n       -       -       pipe
  user=nobody argv=${script} multi \${recipient}
p4        unix  -       -       n       -       -       pipe
  user=nobody argv=${script} unprivileged
p2        unix  -       n       n       -       -       pipe
  user=nobody argv=/bin/sh -c { echo no such user; exit 67 }
`;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const recorder = `#!/bin/sh
out="$(dirname "$0")/record-$1"
for a in "$@"; do printf '[%s]\\n' "$a"; done > "$out.tmp"
echo ---- >> "$out.tmp"
cat >> "$out.tmp"
echo ---- >> "$out.tmp"
env | sort >> "$out.tmp"
echo ---- >> "$out.tmp"
id -un >> "$out.tmp"
umask >> "$out.tmp"
mv "$out.tmp" "$out"
echo stored
`;

Deno.test("a message for a master.cf pipe service reaches its command", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const work = await Deno.makeTempDir({ prefix: "pipe-e2e-" });
  // The command runs as nobody: it writes its record here.
  await Deno.chmod(work, 0o777);
  const script = `${work}/record.sh`;
  Deno.writeTextFileSync(script, recorder);
  Deno.chmodSync(script, 0o755);
  const inst = await Instance.create(
    masterCf(script),
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "transport_maps = inline:{pipe.example=p1:hop.example, fail.example=p2:, " +
      "multi.example=p3:, unpriv.example=p4:, sender.example=discard:}",
      "p1_destination_recipient_limit = 1",
      "hash_queue_names =",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    const sent = await runProgram(
      "sendmail",
      [
        "-f",
        "someone@sender.example",
        "joe@pipe.example",
        "kim@pipe.example",
        "ann@fail.example",
        "one@multi.example",
        "two@multi.example",
        "eve@unpriv.example",
      ],
      {
        stdin: "From: someone@sender.example\nSubject: to a pipe\n\nBody text.\n",
        env: { MAIL_CONFIG: inst.dir },
      },
    );
    assertEquals(sent.code, 0, sent.stderr);
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const done = await waitFor(
      () =>
        inst.readLog().split("status=sent (delivered via p").length === 5 &&
        inst.readLog().includes("to=<ann@fail.example>, relay=p2"),
      45_000,
    );
    const log = inst.readLog();
    assert(done, "no pipe delivery:\n" + log);
    assertStringIncludes(log, "to=<joe@pipe.example>, relay=p1, delay=");
    assertStringIncludes(log, "to=<kim@pipe.example>, relay=p1, delay=");
    assertStringIncludes(log, "to=<one@multi.example>, relay=p3, delay=");
    assertStringIncludes(log, "to=<two@multi.example>, relay=p3, delay=");
    assertStringIncludes(
      log,
      "to=<ann@fail.example>, relay=p2, delay=",
    );
    assertStringIncludes(
      log,
      "dsn=5.1.1, status=bounced (user unknown. Command output: no such user )",
    );
    const record = Deno.readTextFileSync(`${work}/record-joe@pipe.example`);
    const [argText, rest, envText, who] = record.split("----\n");
    assertEquals(argText.trim().split("\n"), [
      "[joe@pipe.example]",
      "[someone@sender.example]",
      "[hop.example]",
      "[x joe y]",
    ]);
    // One command per recipient, each with its own Delivered-To.
    const kim = Deno.readTextFileSync(`${work}/record-kim@pipe.example`);
    assertStringIncludes(kim, "\nDelivered-To: kim@pipe.example\n");
    // Without a limit, one command takes both recipients.
    const multi = Deno.readTextFileSync(`${work}/record-multi`).split("----\n")[0];
    assertEquals(multi.trim().split("\n"), [
      "[multi]",
      "[one@multi.example]",
      "[two@multi.example]",
    ]);
    assertEquals(rest.split("\n").slice(0, 3), [
      "Return-Path: <someone@sender.example>",
      "X-Original-To: joe@pipe.example",
      "Delivered-To: joe@pipe.example",
    ]);
    assertStringIncludes(rest, "Subject: to a pipe\n");
    assertStringIncludes(rest, "\n\nBody text.\n");
    // export_environment's names as import_environment left them, and PATH
    // (the shell adds PWD), as with the reference's pipe.
    assertEquals(
      envText.trim().split("\n").filter((l) => !/^(PWD|SHLVL|_)=/.test(l)),
      ["LANG=C", `MAIL_CONFIG=${inst.dir}`, "PATH=/usr/bin:/bin"],
    );
    // The command ran as user=, not as the pipe daemon's root.
    const [user, umask] = who.trim().split("\n");
    if (Deno.uid() === 0) assertEquals(user, "nobody");
    assertEquals(umask, "0077");
    // As root, a pipe service left unprivileged in master.cf would run its
    // commands as mail_owner: it refuses to start, and nothing runs.
    if (Deno.uid() === 0) {
      assert(
        await waitFor(
          () => inst.readLog().includes("fatal: service p4: running unprivileged"),
          20_000,
        ),
        inst.readLog(),
      );
      assert(!exists(`${work}/record-unprivileged`));
    }
  } finally {
    if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
    await inst.destroy();
    await Deno.remove(work, { recursive: true });
  }
});
