import { assert, assertEquals, assertMatch } from "../../assert.ts";
import {
  asctime,
  deliverToMbox,
  fromLine,
  LockStyleError,
  mboxMessage,
  openMailbox,
  parseLockStyles,
} from "../../../lib/mailbox/mod.ts";
import { fastLocks, message, tempDir, testIdentity } from "./fixture.ts";
import { captureLog } from "../../../lib/log.ts";

const dec = new TextDecoder();

Deno.test("asctime() pads the day with a space as asctime(3) does", () => {
  assertEquals(asctime(new Date(2026, 10, 4, 9, 5, 1)), "Wed Nov  4 09:05:01 2026");
  assertEquals(asctime(new Date(2026, 0, 24, 19, 1, 5)), "Sat Jan 24 19:01:05 2026");
});

Deno.test("fromLine() names MAILER-DAEMON for the null sender and quotes a local part", () => {
  const when = new Date(2026, 10, 24, 19, 1, 5);
  assertEquals(fromLine("", when), "From MAILER-DAEMON  Tue Nov 24 19:01:05 2026\n");
  assertEquals(fromLine("a@example.com", when), "From a@example.com  Tue Nov 24 19:01:05 2026\n");
  assertEquals(
    fromLine("a b@example.com", when),
    'From "a b"@example.com  Tue Nov 24 19:01:05 2026\n',
  );
});

Deno.test("mboxMessage() quotes lines starting with From and ends with an empty line", () => {
  const when = new Date(2026, 10, 24, 19, 1, 5);
  const text = dec.decode(mboxMessage(
    message(["Subject: x", "", "From here", ">From there", "From", " From", "end"]),
    { sender: "s@example.com", prepend: ["Delivered-To: u@example.com"], when },
  ));
  assertEquals(
    text,
    "From s@example.com  Tue Nov 24 19:01:05 2026\n" +
      "Delivered-To: u@example.com\nSubject: x\n\n>From here\n>From there\nFrom\n From\nend\n\n",
  );
});

Deno.test("parseLockStyles() accepts Postfix's names and rejects others as Postfix words it", () => {
  assertEquals(parseLockStyles("fcntl, dotlock"), ["fcntl", "dotlock"]);
  assertEquals(parseLockStyles(""), []);
  let text = "";
  try {
    parseLockStyles("foo", "mailbox_delivery_lock");
  } catch (err) {
    assert(err instanceof LockStyleError);
    text = err.message;
  }
  assertEquals(text, 'unknown mailbox_delivery_lock value "foo" in "foo"');
});

Deno.test("deliverToMbox() creates a missing mailbox with mode 0600 and appends messages", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  for (const subject of ["one", "two"]) {
    const r = await deliverToMbox({
      path,
      sender: "",
      content: message([`Subject: ${subject}`, "", "body"]),
      styles: ["fcntl", "dotlock"],
    });
    assertEquals(r, { ok: true, path });
  }
  const text = Deno.readTextFileSync(path);
  assertEquals(text.match(/^From MAILER-DAEMON {2}/gm)?.length, 2);
  assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
  assert(!existsSync(`${path}.lock`), "the dotlock is removed");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() past the size limit fails with 5.2.2 File too large and leaves the mailbox as it was", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(path, "From old  Tue Nov 24 19:01:05 2026\nSubject: old\n\nold\n\n", {
    mode: 0o600,
  });
  const before = Deno.readFileSync(path);
  const r = await deliverToMbox({
    path,
    sender: "s@example.com",
    content: message(["Subject: big", "", "x".repeat(500)]),
    styles: ["flock"],
    sizeLimit: before.length + 100,
  });
  assertEquals(r, {
    ok: false,
    dsn: "5.2.2",
    text: "error writing message: File too large",
    errno: 27,
  });
  assertEquals(Deno.readFileSync(path), before);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() defers with 4.2.0 while another holder keeps the dotlock", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(`${path}.lock`, "");
  const r = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["dotlock"],
    ...fastLocks,
  });
  assertEquals(r, {
    ok: false,
    dsn: "4.2.0",
    text: `unable to create lock file ${path}.lock: File exists`,
    errno: 17,
  });
  assert(!existsSync(path), "nothing was created");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() removes a dotlock older than stale_lock_time", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(`${path}.lock`, "");
  await new Promise((r) => setTimeout(r, 20));
  const r = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["dotlock"],
    ...fastLocks,
    staleTime: 0,
  });
  assertEquals(r, { ok: true, path });
  assert(!existsSync(`${path}.lock`));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() defers with 4.2.0 while another process holds a kernel lock", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(path, "", { mode: 0o600 });
  for (const style of ["flock", "fcntl"] as const) {
    // A separate process holds the lock (locks of one process do not conflict).
    const holder = new Deno.Command("python3", {
      args: [
        "-c",
        `import fcntl,sys,time
f=open(sys.argv[1],'a')
${style === "flock" ? "fcntl.flock(f, fcntl.LOCK_EX)" : "fcntl.lockf(f, fcntl.LOCK_EX)"}
print('locked', flush=True)
sys.stdin.read()`,
        path,
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    await reader.read();
    const r = await deliverToMbox({
      path,
      sender: "",
      content: message(["Subject: x", "", "y"]),
      styles: [style],
      ...fastLocks,
    });
    assertEquals(r, {
      ok: false,
      dsn: "4.2.0",
      text: "unable to lock for exclusive access: Resource temporarily unavailable",
      errno: 11,
    });
    await holder.stdin.close();
    reader.releaseLock();
    await holder.stdout.cancel();
    await holder.status;
  }
  assertEquals(Deno.readTextFileSync(path), "");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() waits for a lock holder and appends after its write", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(path, "", { mode: 0o600 });
  const holder = new Deno.Command("python3", {
    args: [
      "-c",
      `import fcntl,sys,time
f=open(sys.argv[1],'a')
fcntl.lockf(f, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(0.3)
f.write('holder wrote this\\n'); f.flush()
fcntl.lockf(f, fcntl.LOCK_UN)`,
      path,
    ],
    stdout: "piped",
  }).spawn();
  const reader = holder.stdout.getReader();
  await reader.read();
  const r = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["fcntl"],
    attempts: 200,
    delay: 0.01,
  });
  assertEquals(r, { ok: true, path });
  reader.releaseLock();
  await holder.stdout.cancel();
  await holder.status;
  assertMatch(Deno.readTextFileSync(path), /^holder wrote this\nFrom MAILER-DAEMON /);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() from several processes at once leaves every message intact", async () => {
  const dir = tempDir();
  const path = `${dir}/shared`;
  const worker = new URL("./append_worker.ts", import.meta.url).pathname;
  const workers = 4;
  const count = 15;
  const runs = Array.from({ length: workers }, (_, id) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-ffi",
        worker,
        path,
        String(id),
        String(count),
        "fcntl dotlock",
      ],
    }).output());
  for (const out of await Promise.all(runs)) {
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  }
  const messages = Deno.readTextFileSync(path).split(/^(?=From w\d@example\.com {2})/m);
  assertEquals(messages.length, workers * count);
  const seen = new Set<string>();
  for (const m of messages) {
    const subject = /^Subject: (\d+)\/(\d+)$/m.exec(m);
    assert(subject, m);
    const [id, i] = [subject[1], subject[2]];
    const body = m.split("\n\n")[1].split("\n");
    assertEquals(body.length, 40, m);
    body.forEach((line, n) => assertEquals(line, `worker ${id} message ${i} line ${n}`));
    assert(m.endsWith("\n\n"));
    seen.add(`${id}/${i}`);
  }
  assertEquals(seen.size, workers * count);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() as another user creates the mailbox owned by that user", async () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = tempDir();
  const path = `${dir}/user`;
  const r = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["fcntl", "dotlock"],
    identity: id,
  });
  assertEquals(r, { ok: true, path });
  const info = Deno.statSync(path);
  assertEquals([info.uid, info.gid, info.mode! & 0o777], [id.uid, id.gid, 0o600]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() as a user who may not write there reports Permission denied", async () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  const path = `${dir}/user`;
  const locked = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["dotlock"],
    identity: id,
  });
  assertEquals(locked, {
    ok: false,
    dsn: "5.2.0",
    text: `unable to create lock file ${path}.lock: Permission denied`,
    errno: 13,
  });
  const unlocked = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["fcntl"],
    identity: id,
    defaultDsn: "4.2.0",
  });
  assertEquals(unlocked, {
    ok: false,
    dsn: "4.2.0",
    text: "cannot create file exclusively: Permission denied",
    errno: 13,
  });
  Deno.writeTextFileSync(path, "", { mode: 0o600 });
  const existing = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["fcntl"],
    identity: id,
  });
  assertMatch(existing.ok ? "" : existing.text, /^cannot open file: Permission denied$/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() refuses a symbolic link a user planted and a hard-linked file", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  Deno.writeTextFileSync(`${dir}/elsewhere`, "");
  Deno.linkSync(`${dir}/elsewhere`, path);
  const linked = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: [],
  });
  assertEquals(linked.ok ? "" : linked.text, "file has 2 hard links");
  Deno.removeSync(path);
  const id = testIdentity();
  if (id) {
    Deno.symlinkSync(`${dir}/elsewhere`, path);
    // A link owned by a user (chown -h: the link itself, not its target).
    new Deno.Command("chown", { args: ["-h", `${id.uid}:${id.gid}`, path] }).outputSync();
    const symlinked = await deliverToMbox({
      path,
      sender: "",
      content: message(["Subject: x", "", "y"]),
      styles: [],
    });
    assertEquals(symlinked.ok ? "" : symlinked.text, "file is a symbolic link");
    // A link root owns is the administrator's and is followed.
    new Deno.Command("chown", { args: ["-h", "0:0", path] }).outputSync();
    const followed = await deliverToMbox({
      path,
      sender: "",
      content: message(["Subject: x", "", "y"]),
      styles: [],
    });
    assertEquals(followed, { ok: true, path });
    Deno.removeSync(path);
    Deno.writeTextFileSync(`${dir}/elsewhere`, "");
  }
  assertEquals(Deno.readTextFileSync(`${dir}/elsewhere`), "");
  Deno.removeSync(dir, { recursive: true });
});

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("deliverToMbox() gives a mailbox it creates as root to createOwner", async () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = tempDir();
  const path = `${dir}/user`;
  const r = await deliverToMbox({
    path,
    sender: "",
    content: message(["Subject: x", "", "y"]),
    styles: ["dotlock"],
    createOwner: id,
  });
  assertEquals(r, { ok: true, path });
  const info = Deno.statSync(path);
  assertEquals([info.uid, info.gid, info.mode! & 0o777], [id.uid, id.gid, 0o600]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deliverToMbox() with dotlockMayFail appends without a dotlock it may not create, and warns", async () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  const path = `${dir}/file`;
  Deno.writeTextFileSync(path, "", { mode: 0o600 });
  Deno.chownSync(path, id.uid, id.gid);
  const lines: string[] = [];
  captureLog((l) => lines.push(l));
  let r;
  try {
    r = await deliverToMbox({
      path,
      sender: "",
      content: message(["Subject: x", "", "y"]),
      styles: ["fcntl", "dotlock"],
      identity: id,
      dotlockMayFail: true,
    });
  } finally {
    captureLog(undefined);
  }
  assertEquals(r, { ok: true, path });
  assertMatch(
    lines.join("\n"),
    /warning: unable to create lock file .*\/file\.lock: Permission denied/,
  );
  assertMatch(Deno.readTextFileSync(path), /^From MAILER-DAEMON /);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openMailbox() makes deliveries of one process take turns on a mailbox", async () => {
  const dir = tempDir();
  const path = `${dir}/user`;
  const first = await openMailbox(path, { styles: ["fcntl"] });
  assert(first.ok);
  let secondDone = false;
  const second = openMailbox(path, { styles: ["fcntl"] }).then((r) => {
    secondDone = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 30));
  assert(!secondDone, "an fcntl lock of the same process must not let a second delivery in");
  first.mailbox.release();
  const r = await second;
  assert(r.ok);
  r.mailbox.release();
  const all = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    deliverToMbox({
      path,
      sender: "",
      content: message([`Subject: ${i}`, "", "body"]),
      styles: ["fcntl"],
    })));
  assert(all.every((x) => x.ok));
  assertEquals(Deno.readTextFileSync(path).match(/^From MAILER-DAEMON /gm)?.length, 10);
  Deno.removeSync(dir, { recursive: true });
});
