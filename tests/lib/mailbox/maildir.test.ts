import { assert, assertEquals, assertMatch } from "../../assert.ts";
import {
  deliverToMaildir,
  maildirHostname,
  maildirNewName,
  maildirTmpName,
} from "../../../lib/mailbox/mod.ts";
import { message, tempDir, testIdentity } from "./fixture.ts";

Deno.test("maildir names follow Postfix: SEC.PPID.HOST in tmp/, SEC.VdevIinoMusec.HOST in new/", () => {
  assertEquals(
    maildirTmpName(1700000000, 4242, "mx.example.com"),
    "1700000000.P4242.mx.example.com",
  );
  assertEquals(
    maildirNewName(1700000000, 123456, 0x803, 0xabcdef, "mx.example.com"),
    "1700000000.V803IabcdefM123456.mx.example.com",
  );
  assertEquals(maildirHostname("a/b:c"), "a\\057b\\072c");
});

Deno.test("deliverToMaildir() creates tmp, new and cur and writes the message with the prepended headers", () => {
  const dir = `${tempDir()}/Maildir/`;
  const r = deliverToMaildir({
    dir,
    content: message(["Subject: x", "", "From the body"]),
    prepend: ["Return-Path: <s@example.com>", "Delivered-To: u@example.com"],
    hostname: "host.example",
  });
  assert(r.ok);
  assertMatch(r.path, /\/new\/\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\.host\.example$/);
  assertEquals(
    Deno.readTextFileSync(r.path),
    "Return-Path: <s@example.com>\nDelivered-To: u@example.com\nSubject: x\n\nFrom the body\n",
  );
  for (const sub of ["tmp", "new", "cur"]) {
    assertEquals(Deno.statSync(dir + sub).mode! & 0o777, 0o700);
  }
  assertEquals([...Deno.readDirSync(dir + "tmp")], []);
  assertEquals(Deno.statSync(r.path).mode! & 0o777, 0o600);
  Deno.removeSync(dir.replace(/\/Maildir\/$/, ""), { recursive: true });
});

Deno.test("deliverToMaildir() gives every message of one second its own name", () => {
  const base = tempDir();
  const dir = `${base}/Maildir`;
  const names = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const r = deliverToMaildir({
      dir,
      content: message([`Subject: ${i}`, "", "body"]),
      now: () => 1700000000_000, // every delivery in the same second and microsecond
    });
    assert(r.ok, JSON.stringify(r));
    names.add(r.path);
  }
  assertEquals(names.size, 200);
  assertEquals([...Deno.readDirSync(`${dir}/new`)].length, 200);
  Deno.removeSync(base, { recursive: true });
});

Deno.test("deliverToMaildir() over the size limit fails with 5.2.2 and leaves no file behind", () => {
  const base = tempDir();
  const dir = `${base}/Maildir/`;
  const r = deliverToMaildir({
    dir,
    content: message(["Subject: x", "", "y".repeat(200)]),
    sizeLimit: 100,
  });
  assertEquals(r, {
    ok: false,
    dsn: "5.2.2",
    text: "error writing message: File too large",
    errno: 27,
  });
  assertEquals([...Deno.readDirSync(`${dir}tmp`)], []);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["tmp"]);
  Deno.removeSync(base, { recursive: true });
});

Deno.test("deliverToMaildir() as another user writes files that user owns, and reports a refused directory", () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const base = tempDir();
  const r = deliverToMaildir({
    dir: `${base}/Maildir/`,
    content: message(["Subject: x", "", "y"]),
    identity: id,
  });
  assert(r.ok);
  const info = Deno.statSync(r.path);
  assertEquals([info.uid, info.gid], [id.uid, id.gid]);
  assertEquals(Deno.statSync(`${base}/Maildir`).uid, id.uid);
  const closed = Deno.makeTempDirSync();
  Deno.chmodSync(closed, 0o755);
  const refused = deliverToMaildir({
    dir: `${closed}/Maildir/`,
    content: message(["Subject: x", "", "y"]),
    identity: id,
    hostname: "h",
  });
  assert(!refused.ok);
  assertEquals(refused.dsn, "4.2.0");
  assertMatch(
    refused.text,
    new RegExp(
      `^create maildir file ${closed}/Maildir/tmp/\\d+\\.P${Deno.pid}\\.h: Permission denied$`,
    ),
  );
  Deno.removeSync(base, { recursive: true });
  Deno.removeSync(closed, { recursive: true });
});
