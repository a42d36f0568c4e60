// Local submission between users (docs/SECURITY.md, "Local submission"):
// the maildrop is set-group-id and sticky, writable by all and listable by
// its owner only; a submitter's file belongs to the submitter and to the
// mail owner's group. Needs root to create the users; skipped otherwise.

import { assert, assertEquals, assertNotEquals } from "../assert.ts";
import { createQueueTree } from "../../lib/queue/layout.ts";
import { passwdByName } from "../../lib/queue/submitter.ts";

const root = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const canAddUsers = isRoot && (() => {
  try {
    return Deno.statSync("/usr/sbin/useradd").isFile;
  } catch {
    return false;
  }
})();

async function sh(cmd: string, args: string[]): Promise<number> {
  return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()).code;
}

/** Runs a shell command line as `user`; returns its status and output. */
async function asUser(
  user: { uid: number; gid: number },
  script: string,
  env: Record<string, string> = {},
  stdin = "",
) {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", script],
    uid: user.uid,
    gid: user.gid,
    env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "one local user cannot list, read, remove or replace another user's queued mail",
  ignore: !canAddUsers,
  async fn() {
    const tag = String(Deno.pid % 100000);
    const names = [`phmail${tag}`, `phalice${tag}`, `phbob${tag}`];
    const added: string[] = [];
    for (const name of names) {
      if (await sh("/usr/sbin/useradd", ["-M", "-s", "/bin/sh", name]) === 0) added.push(name);
    }
    if (added.length < names.length) {
      // A system that refuses new users (read-only passwd file): nothing to test here.
      for (const name of added) await sh("/usr/sbin/userdel", [name]);
      console.log("skipped: useradd failed");
      return;
    }
    const [mail, alice, bob] = names.map((n) => passwdByName(n)!);
    const dir = Deno.makeTempDirSync({ prefix: "posthorn-users-" });
    try {
      Deno.chmodSync(dir, 0o755);
      const queueDir = `${dir}/queue`;
      createQueueTree({ queueDirectory: queueDir, hashQueueNames: [], hashQueueDepth: 1 }, {
        uid: mail.uid,
        gid: mail.gid,
      });
      Deno.mkdirSync(`${dir}/etc`);
      Deno.writeTextFileSync(
        `${dir}/etc/main.cf`,
        `queue_directory = ${queueDir}\nmail_owner = ${mail.name}\n`,
      );
      // Each user gets a Deno cache of their own.
      for (const user of [alice, bob]) {
        Deno.mkdirSync(`${dir}/cache-${user.name}`);
        Deno.chownSync(`${dir}/cache-${user.name}`, user.uid, user.gid);
      }
      const posthorn = `${Deno.execPath()} run -A --unstable-ffi --unstable-net ${root}mod.ts`;
      const envOf = (u: { name: string }) => ({
        MAIL_CONFIG: `${dir}/etc`,
        DENO_DIR: `${dir}/cache-${u.name}`,
        HOME: dir,
      });

      const sent = await asUser(
        alice,
        `${posthorn} sendmail -f alice@example.com bob@example.com`,
        envOf(alice),
        "Subject: private\n\nsecret\n",
      );
      assertEquals(sent.code, 0, sent.stderr);
      const files = [...Deno.readDirSync(`${queueDir}/maildrop`)].map((e) => e.name);
      assertEquals(files.length, 1);
      const path = `${queueDir}/maildrop/${files[0]}`;
      const info = Deno.statSync(path);
      assertEquals(info.uid, alice.uid, "the file owner names the submitter");
      assertEquals(info.gid, mail.gid, "the file belongs to the mail owner's group");
      assertEquals(info.mode! & 0o7777, 0o740);

      // Bob can neither list the maildrop, nor read, remove, rename or overwrite Alice's file.
      assertNotEquals((await asUser(bob, `ls ${queueDir}/maildrop`)).code, 0);
      assertNotEquals((await asUser(bob, `cat ${path}`)).code, 0);
      assertNotEquals((await asUser(bob, `rm -f ${path}`)).code, 0);
      assertNotEquals((await asUser(bob, `mv ${path} ${queueDir}/maildrop/mine`)).code, 0);
      assertNotEquals((await asUser(bob, `echo x > ${path}`)).code, 0);
      const bobCat = await asUser(bob, `${posthorn} postcat ${path}`, envOf(bob));
      assertNotEquals(bobCat.code, 0);
      assert(!bobCat.stdout.includes("secret"));
      assert(Deno.statSync(path).isFile);

      // Bob submits too; his file is his. The mail owner (pickup's user) reads both.
      const bobSent = await asUser(
        bob,
        `${posthorn} sendmail -f bob@example.com alice@example.com`,
        envOf(bob),
        "hi\n",
      );
      assertEquals(bobSent.code, 0, bobSent.stderr);
      assertEquals([...Deno.readDirSync(`${queueDir}/maildrop`)].length, 2);
      const mailRead = await asUser(mail, `cat ${path}`);
      assertEquals(mailRead.code, 0);
      assert(mailRead.stdout.includes("secret"));
    } finally {
      Deno.removeSync(dir, { recursive: true });
      for (const name of names) await sh("/usr/sbin/userdel", [name]);
    }
  },
});
