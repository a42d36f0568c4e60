// local(8) running as root: deliveries take the recipient's rights
// (posthorn-test), alias commands of a root-owned database take
// default_privs, and a mailbox the recipient cannot write fails as Postfix
// reports it. Skipped when not root.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { ensureTestUser } from "../master/instance.ts";
import { userByName } from "../../../daemons/local/users.ts";
import { localFixture, opts, statuses } from "./fixture.ts";

const root = Deno.uid() === 0;

async function rootFixture(mainCf: Record<string, string> = {}) {
  ensureTestUser();
  const pw = userByName("posthorn-test")!;
  const f = await localFixture(mainCf, []);
  Deno.chmodSync(f.dir, 0o755);
  const home = `${f.dir}/home/posthorn-test`;
  Deno.mkdirSync(home, { recursive: true });
  Deno.chmodSync(`${f.dir}/home`, 0o755);
  Deno.chownSync(home, pw.uid, pw.gid);
  f.users.set("posthorn-test", { ...pw, home });
  f.env.privileged = true;
  const nobody = userByName("nobody")!;
  f.env.defaultPrivs = { uid: nobody.uid, gid: nobody.gid, logname: "nobody", home: nobody.home };
  f.env.lookupUid = (uid) => uid === pw.uid ? { ...pw, home } : undefined;
  return { f, pw, home };
}

Deno.test({
  name: "mailbox_command and maildir deliveries run as the recipient",
  ignore: !root,
  ...opts,
  fn: async () => {
    const { f, pw, home } = await rootFixture({ home_mailbox: "Maildir/" });
    try {
      const md = await f.deliver(["posthorn-test@example.com"]);
      assertEquals(statuses(md.log), [
        "posthorn-test@example.com 2.0.0 sent (delivered to maildir)",
      ]);
      const name = [...Deno.readDirSync(`${home}/Maildir/new`)][0].name;
      assertEquals(Deno.statSync(`${home}/Maildir/new/${name}`).uid, pw.uid);
      f.env.settings.mailboxCommand = 'id -u > "$HOME/uid"; id -g >> "$HOME/uid"; cat > /dev/null';
      const cmd = await f.deliver(["posthorn-test@example.com"]);
      assertEquals(statuses(cmd.log).length, 1);
      assertStringIncludes(statuses(cmd.log)[0], "2.0.0 sent (delivered to command: id -u");
      assertEquals(Deno.readTextFileSync(`${home}/uid`), `${pw.uid}\n${pw.gid}\n`);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name: "a spool mailbox is created for the recipient; a home the recipient cannot write fails",
  ignore: !root,
  ...opts,
  fn: async () => {
    const { f, pw, home } = await rootFixture();
    try {
      await f.deliver(["posthorn-test@example.com"]);
      const st = Deno.statSync(`${f.spool}/posthorn-test`);
      assertEquals([st.uid, (st.mode ?? 0) & 0o777], [pw.uid, 0o600]);
      Deno.chownSync(home, 0, 0);
      f.env.settings.homeMailbox = "Mailbox";
      const { log } = await f.deliver(["posthorn-test@example.com"]);
      assertEquals(statuses(log).length, 1);
      assertStringIncludes(
        statuses(log)[0],
        ` bounced (cannot update mailbox ${home}/Mailbox for user posthorn-test. cannot `,
      );
      assert(statuses(log)[0].endsWith(": Permission denied)"));
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name: "commands of a root-owned alias database run with default_privs",
  ignore: !root,
  ...opts,
  fn: async () => {
    const { f } = await rootFixture();
    const out = `${f.dir}/drop`;
    Deno.mkdirSync(out, { mode: 0o1777 });
    Deno.chmodSync(out, 0o1777);
    try {
      await f.aliases(`who: "|id -un > ${out}/who"\n`);
      const { log } = await f.deliver(["who@example.com"]);
      assertEquals(statuses(log), [
        `who@example.com 2.0.0 sent (delivered to command: id -un > ${out}/who)`,
      ]);
      assertEquals(Deno.readTextFileSync(`${out}/who`), "nobody\n");
      assert(Deno.statSync(`${out}/who`).uid !== 0);
    } finally {
      await f.cleanup();
    }
  },
});
