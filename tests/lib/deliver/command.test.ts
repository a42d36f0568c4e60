// lib/deliver/command.ts: a delivery command's end as a delivery status,
// as Postfix's pipe_command() reports it (texts checked against the
// reference's pipe(8) log lines), privileges, environment, time limit.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { captureLog } from "../../../lib/log.ts";
import {
  commandEnvironment,
  importedEnvironment,
  leadingDsn,
  needsShell,
  printableOutput,
  runCommand,
  sysExitsDetail,
  sysExitsSoftError,
} from "../../../lib/deliver/command.ts";
import { ensureTestUser } from "../../daemons/master/instance.ts";
import { makeJail } from "../../daemons/pipe/jail.ts";

const enc = new TextEncoder();

/** Runs `fn` with log lines captured. */
async function logged<T>(fn: () => Promise<T>): Promise<{ value: T; log: string[] }> {
  const log: string[] = [];
  captureLog((line) => log.push(line));
  try {
    return { value: await fn(), log };
  } finally {
    captureLog(undefined);
  }
}

Deno.test("sysExitsDetail() maps every sysexits.h code as Postfix's table does", () => {
  const table: [number, string, string][] = [
    [64, "5.3.0", "command line usage error"],
    [65, "5.6.0", "data format error"],
    [66, "5.3.0", "cannot open input"],
    [67, "5.1.1", "user unknown"],
    [68, "5.1.2", "host name unknown"],
    [69, "5.3.0", "service unavailable"],
    [70, "5.3.0", "internal software error"],
    [71, "4.3.0", "system resource problem"],
    [72, "5.3.0", "critical OS file missing"],
    [73, "5.2.0", "can't create user output file"],
    [74, "5.3.0", "input/output error"],
    [75, "4.3.0", "temporary failure"],
    [76, "5.5.0", "remote error in protocol"],
    [77, "5.7.0", "permission denied"],
    [78, "5.3.5", "local configuration error"],
  ];
  for (const [code, dsn, text] of table) assertEquals(sysExitsDetail(code), { dsn, text });
  assertEquals(sysExitsDetail(1), { dsn: "5.3.0", text: "unknown mail system error 1" });
  assertEquals([71, 75].every(sysExitsSoftError), true);
  assertEquals(sysExitsSoftError(67) || sysExitsSoftError(3), false);
});

Deno.test("needsShell() sends only command lines with shell metacharacters to /bin/sh", () => {
  assertEquals(needsShell("/usr/bin/procmail -a foo"), false);
  assertEquals(needsShell("cmd --opt=a,b user@example.com 50%"), false);
  assertEquals(needsShell("cmd | other"), true);
  assertEquals(needsShell("cmd > file"), true);
  assertEquals(needsShell('cmd "quoted"'), true);
  assertEquals(needsShell("echo $HOME"), true);
  assertEquals(needsShell("   "), true);
});

Deno.test("printableOutput() turns tabs and newlines into spaces, controls into _, stops at NUL", () => {
  assertEquals(printableOutput(enc.encode("a\tb\nc\rd\x01é\n")), "a b c_d_é ");
  assertEquals(printableOutput(enc.encode("before\0after")), "before");
});

Deno.test("leadingDsn() accepts an X.Y.Z code at the start of output only", () => {
  assertEquals(leadingDsn("5.2.2 mailbox is full "), { dsn: "5.2.2", text: "mailbox is full " });
  assertEquals(leadingDsn("4.7.1"), { dsn: "4.7.1", text: "" });
  assertEquals(leadingDsn("3.2.2 no"), undefined);
  assertEquals(leadingDsn("error 5.2.2"), undefined);
  assertEquals(leadingDsn("5.2.2.1 x"), undefined);
});

Deno.test("runCommand() feeds the message on stdin and reports success with the output", async () => {
  const r = await runCommand({
    argv: ["/bin/cat"],
    stdin: enc.encode("line one\nline two\n"),
    timeLimit: 10,
  });
  assertEquals([r.outcome, r.dsn, r.output, r.exitCode], [
    "sent",
    "2.0.0",
    "line one line two ",
    0,
  ]);
});

Deno.test("runCommand() reads a large message through and ignores a command that stops reading", async () => {
  const big = new Uint8Array(1 << 20).fill(0x61);
  const counted = await runCommand({ argv: ["wc", "-c"], stdin: big, timeLimit: 10 });
  assertEquals(counted.output.trim(), String(1 << 20));
  // EPIPE on the message is no error when the command exits 0 (Postfix too).
  const ignored = await runCommand({ argv: ["/bin/true"], stdin: big, timeLimit: 10 });
  assertEquals([ignored.outcome, ignored.dsn], ["sent", "2.0.0"]);
});

Deno.test("runCommand() maps EX_TEMPFAIL to a 4.3.0 deferral with the output", async () => {
  const r = await runCommand({ command: "echo try later; exit 75", timeLimit: 10 });
  assertEquals([r.outcome, r.dsn], ["deferred", "4.3.0"]);
  assertEquals(r.text, "temporary failure. Command output: try later ");
  assertEquals(r.diagText, "try later ");
});

Deno.test("runCommand() maps EX_NOUSER, EX_UNAVAILABLE and EX_NOPERM to bounces", async () => {
  const cases: [number, string, string][] = [
    [67, "5.1.1", "user unknown"],
    [69, "5.3.0", "service unavailable"],
    [77, "5.7.0", "permission denied"],
  ];
  for (const [code, dsn, text] of cases) {
    const r = await runCommand({ command: `exit ${code}`, timeLimit: 10 });
    assertEquals([r.outcome, r.dsn, r.text, r.diagText], ["bounced", dsn, text, text]);
  }
});

Deno.test("runCommand() bounces another status as 'Command died with status N'", async () => {
  const r = await runCommand({ command: "echo nope; exit 3", timeLimit: 10 });
  assertEquals([r.outcome, r.dsn], ["bounced", "5.3.0"]);
  assertEquals(r.text, 'Command died with status 3: "echo nope; exit 3". Command output: nope ');
  const quiet = await runCommand({ argv: ["/bin/sh", "-c", "exit 1"], timeLimit: 10 });
  assertEquals(quiet.text, 'Command died with status 1: "/bin/sh"');
  assertEquals(quiet.diagText, "unknown mail system error 1");
});

Deno.test("runCommand() lets an enhanced status code in the output decide", async () => {
  const bounce = await runCommand({
    command: "echo 5.2.2 mailbox is full; exit 75",
    timeLimit: 10,
  });
  assertEquals([bounce.outcome, bounce.dsn, bounce.text], ["bounced", "5.2.2", "mailbox is full "]);
  const defer = await runCommand({ command: "echo 4.2.1 busy; exit 1", timeLimit: 10 });
  assertEquals([defer.outcome, defer.dsn, defer.text], ["deferred", "4.2.1", "busy "]);
});

Deno.test("runCommand() defers a command killed by a signal", async () => {
  const r = await runCommand({
    argv: ["/bin/sh", "-c", "echo dying; kill -TERM $$"],
    timeLimit: 10,
  });
  assertEquals([r.outcome, r.dsn, r.signal], ["deferred", "4.3.0", "SIGTERM"]);
  assertEquals(r.text, 'Command died with signal 15: "/bin/sh". Command output: dying ');
});

Deno.test("runCommand() kills the whole process group after the time limit and bounces", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { value: r, log } = await logged(() =>
      runCommand({
        argv: ["/bin/sh", "-c", `echo working; sleep 60 & echo $! > ${dir}/bg; wait`],
        timeLimit: 1,
      })
    );
    assertEquals([r.outcome, r.dsn, r.timedOut, r.signal], ["bounced", "5.3.0", true, "SIGKILL"]);
    assertEquals(r.text, 'Command time limit exceeded: "/bin/sh". Command output: working ');
    assertStringIncludes(log.join("\n"), "warning: pipe_command_read: read time limit exceeded");
    // The background child was in the group and died with it.
    const bg = parseInt(Deno.readTextFileSync(`${dir}/bg`), 10);
    let state = "";
    for (let i = 0; i < 50; i++) {
      try {
        state = Deno.readTextFileSync(`/proc/${bg}/stat`).split(") ")[1][0];
      } catch {
        state = "gone";
      }
      if (state === "gone" || state === "Z") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert(state === "gone" || state === "Z", `background process still ${state}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runCommand() keeps at most outputLimit bytes of output", async () => {
  const r = await runCommand({
    argv: ["/bin/sh", "-c", "head -c 9000 /dev/zero | tr '\\0' x; exit 75"],
    timeLimit: 10,
  });
  assertEquals(r.output, "x".repeat(4096));
  const small = await runCommand({
    argv: ["/bin/echo", "abcdefgh"],
    timeLimit: 10,
    outputLimit: 3,
  });
  assertEquals(small.output, "abc");
});

Deno.test("runCommand() output of NUL bytes shows an empty 'Command output: ' as Postfix does", async () => {
  const r = await runCommand({
    argv: ["/bin/sh", "-c", "head -c 50 /dev/zero; exit 75"],
    timeLimit: 10,
  });
  assertEquals([r.text, r.diagText], ["temporary failure. Command output: ", ""]);
});

Deno.test("runCommand() defers a command that cannot be executed, with the child's diagnostic", async () => {
  const { value: r, log } = await logged(() =>
    runCommand({ argv: ["/nonexistent/cmd"], timeLimit: 10, program: "pipe" })
  );
  assertEquals([r.outcome, r.dsn], ["deferred", "4.3.0"]);
  assertEquals(
    r.text,
    "temporary failure. Command output: pipe: fatal: pipe_command: execvp /nonexistent/cmd: No such file or directory ",
  );
  assertStringIncludes(
    log.join("\n"),
    "fatal: pipe_command: execvp /nonexistent/cmd: No such file or directory",
  );
});

Deno.test("runCommand() defers when the working directory is missing", async () => {
  const { value: r, log } = await logged(() =>
    runCommand({ argv: ["/bin/true"], cwd: "/nonexistent", uid: 65534, gid: 65534, timeLimit: 10 })
  );
  assertEquals([r.outcome, r.dsn, r.text], ["deferred", "4.3.0", "temporary failure"]);
  assertStringIncludes(
    log.join("\n"),
    'fatal: cannot change directory to "/nonexistent" for uid=65534 gid=65534: No such file or directory',
  );
});

Deno.test("runCommand() runs a command line without metacharacters directly, a built-in through the shell", async () => {
  const direct = await runCommand({ command: "/bin/echo a   b", timeLimit: 10 });
  assertEquals(direct.output, "a b ");
  const builtin = await runCommand({ command: "exit 67", timeLimit: 10 });
  assertEquals(builtin.dsn, "5.1.1");
  const shell = await runCommand({ command: "echo one | tr o O", timeLimit: 10 });
  assertEquals(shell.output, "One ");
  const custom = await runCommand({
    command: "echo via shell",
    shell: "/bin/sh -c",
    timeLimit: 10,
  });
  assertEquals(custom.output, "via shell ");
});

Deno.test("runCommand() gives a clean environment: PATH, exported names, the caller's variables", async () => {
  const r = await runCommand({
    argv: ["/usr/bin/env"],
    timeLimit: 10,
    exportEnvironment: ["TZ", "LANG", "NOT_SET_ANYWHERE"],
    importEnvironment: ["TZ=Europe/Paris", "LANG=C"],
    env: { SENDER: "a@example.com" },
    cwd: "/",
  });
  const vars = r.output.trim().split(" ").sort();
  assertEquals(vars, ["LANG=C", "PATH=/usr/bin:/bin", "SENDER=a@example.com", "TZ=Europe/Paris"]);
});

Deno.test("commandEnvironment() and importedEnvironment() follow export_environment and import_environment", () => {
  const imported = importedEnvironment(["MAIL_CONFIG", "LANG=C", "ABSENT"], {
    MAIL_CONFIG: "/etc/x",
    SECRET: "no",
  });
  assertEquals(imported, { MAIL_CONFIG: "/etc/x", LANG: "C" });
  assertEquals(
    commandEnvironment(["MAIL_CONFIG", "TZ"], { PATH: "/mine" }, imported),
    { MAIL_CONFIG: "/etc/x", PATH: "/mine" },
  );
});

Deno.test("runCommand() works in the given directory", async () => {
  const r = await runCommand({ argv: ["/bin/pwd"], cwd: "/tmp", timeLimit: 10 });
  assertEquals(r.output.trim(), "/tmp");
});

Deno.test("runCommand() runs as the given user without root's supplementary groups", async () => {
  if (Deno.uid() !== 0) return; // Only root can change user.
  ensureTestUser();
  const id = (flag: string) =>
    new TextDecoder().decode(
      new Deno.Command("id", { args: [flag, "posthorn-test"] }).outputSync().stdout,
    ).trim();
  const uid = parseInt(id("-u"), 10);
  const gid = parseInt(id("-g"), 10);
  const r = await runCommand({
    argv: ["/bin/sh", "-c", "id -u; id -g; grep ^Groups: /proc/self/status"],
    uid,
    gid,
    timeLimit: 10,
    cwd: "/",
  });
  const [u, g, ...groups] = r.output.trim().split(/\s+/);
  assertEquals([u, g], [String(uid), String(gid)]);
  // "Groups:" then nothing, or the primary group alone: never root's 0.
  assertMatch(groups.join(" "), new RegExp(`^Groups:( ${gid})?$`));
});

Deno.test("runCommand() runs the command inside chroot, then in cwd there, as the user", async () => {
  if (Deno.uid() !== 0) return; // chroot(2) needs root.
  const jail = await makeJail();
  try {
    const r = await runCommand({
      argv: ["/bin/sh", "-c", "echo /*; pwd; cat > /work/in"],
      chroot: jail,
      uid: 65534,
      gid: 65534,
      stdin: enc.encode("message\n"),
      timeLimit: 10,
    });
    assertEquals(r.outcome, "sent");
    // Only the jail is visible; the command starts at its root.
    assert(r.output.endsWith(" / "), r.output);
    assert(!r.output.includes("/proc") && !r.output.includes("/usr"), r.output);
    assertEquals(Deno.readTextFileSync(`${jail}/work/in`), "message\n");
    assertEquals(Deno.statSync(`${jail}/work/in`).uid, 65534);
    const inWork = await runCommand({
      argv: ["/bin/sh", "-c", "pwd"],
      chroot: jail,
      cwd: "/work",
      uid: 65534,
      gid: 65534,
      timeLimit: 10,
    });
    assertEquals(inWork.output, "/work ");
  } finally {
    await Deno.remove(jail, { recursive: true });
  }
});

Deno.test("runCommand() reports chroot failures as Postfix's child does", async () => {
  if (Deno.uid() !== 0) return;
  const jail = await makeJail();
  try {
    const as = { uid: 65534, gid: 65534, timeLimit: 10, chroot: jail };
    const { value: [missing, noDir, noJail], log } = await logged(() =>
      Promise.all([
        runCommand({ ...as, argv: ["/bin/nothere"] }),
        runCommand({ ...as, argv: ["/bin/sh", "-c", "pwd"], cwd: "/nowhere" }),
        runCommand({ ...as, argv: ["/bin/sh"], chroot: `${jail}/none` }),
      ])
    );
    assertEquals([missing.outcome, missing.dsn], ["deferred", "4.3.0"]);
    assertEquals(
      missing.text,
      "temporary failure. Command output: pipe: fatal: pipe_command: execvp /bin/nothere: No such file or directory ",
    );
    assertEquals([noDir.outcome, noDir.text], ["deferred", "temporary failure"]);
    assertEquals([noJail.outcome, noJail.text], ["deferred", "temporary failure"]);
    const text = log.join("\n");
    assertStringIncludes(
      text,
      "fatal: pipe_command: execvp /bin/nothere: No such file or directory",
    );
    assertStringIncludes(
      text,
      'fatal: cannot change directory to "/nowhere" for uid=65534 gid=65534: No such file or directory',
    );
    assertStringIncludes(text, `fatal: chroot(${jail}/none): No such file or directory`);
  } finally {
    await Deno.remove(jail, { recursive: true });
  }
});
