// proxymap(8) in a whole instance: one proxy:hash table served to postmap -q
// and to smtpd's check_recipient_access; a table outside proxy_read_maps
// refused with Postfix's words; postmap -d through proxywrite, after which
// smtpd's next lookup sees the change.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { runProgram } from "../../run.ts";
import { ensureTestUser, freePort, Instance, waitFor } from "../master/instance.ts";
import { session } from "../smtpd/helpers.ts";

function masterCf(port: number): string {
  return `
127.0.0.1:${port} inet n - n - - smtpd
cleanup    unix n - n - 0 cleanup
rewrite    unix - - n - - trivial-rewrite
anvil      unix - - n - 1 anvil
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
`;
}

/** Gives the table folder to the instance's mail_owner (root mode), so proxywrite can write. */
function giveToMailOwner(dir: string): void {
  const user = ensureTestUser();
  if (!user) return;
  const out = new Deno.Command("id", { args: ["-u", user] }).outputSync();
  const uid = Number(new TextDecoder().decode(out.stdout).trim());
  for (const e of Deno.readDirSync(dir)) Deno.chownSync(`${dir}/${e.name}`, uid, null);
  Deno.chownSync(dir, uid, null);
}

Deno.test({
  name: "proxymap serves a table to postmap -q and smtpd; proxywrite takes postmap -d",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const port = freePort();
    const inst = await Instance.create(masterCf(port), "");
    const tables = `${inst.dir}/tables`;
    const access = `hash:${tables}/access`;
    await Deno.mkdir(tables);
    await Deno.writeTextFile(`${tables}/access`, "blocked@example.com REJECT no mail for you\n");
    await Deno.writeTextFile(
      `${inst.dir}/main.cf`,
      [
        "myhostname = mx.example.com",
        "mydestination = $myhostname",
        "local_recipient_maps =",
        "compatibility_level = 3.6",
        "smtpd_error_sleep_time = 0",
        "hash_queue_names =",
        `proxy_read_maps = proxy:${access}`,
        `proxy_write_maps = proxy:${access}`,
        `smtpd_recipient_restrictions = check_recipient_access proxy:${access},` +
        " permit_mynetworks, reject_unauth_destination",
      ].join("\n") + "\n",
      { append: true },
    );
    try {
      const built = await runProgram("postmap", ["-c", inst.dir, access]);
      assertEquals(built.code, 0, built.stderr);
      giveToMailOwner(tables);
      const start = await inst.postfix("start");
      assertEquals(start.code, 0, start.stderr);

      const q = await runProgram("postmap", [
        "-c",
        inst.dir,
        "-q",
        "blocked@example.com",
        `proxy:${access}`,
      ]);
      assertEquals([q.code, q.stdout, q.stderr], [0, "REJECT no mail for you\n", ""]);

      const before = await session(port, [
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<blocked@example.com>",
        "RCPT TO:<other@example.com>",
        "QUIT",
      ]);
      assertEquals(
        before[3],
        "554 5.7.1 <blocked@example.com>: Recipient address rejected: no mail for you",
      );
      assertEquals(before[4], "250 2.1.5 Ok");

      const other = `hash:${tables}/other`;
      const refused = await runProgram("postmap", ["-c", inst.dir, "-q", "x", `proxy:${other}`]);
      assertEquals(refused.code, 1);
      // Postfix's client words it so at open time; postmap names the table in front.
      assertStringIncludes(
        refused.stderr,
        `proxymap service is not configured for table "${other}"\n`,
      );
      assert(
        await waitFor(() =>
          inst.readLog().includes(`warning: request for unapproved table: "${other}"`)
        ),
        inst.readLog(),
      );

      const d = await runProgram("postmap", [
        "-c",
        inst.dir,
        "-d",
        "blocked@example.com",
        `proxy:${access}`,
      ]);
      assertEquals([d.code, d.stderr], [0, ""]);
      const gone = await runProgram("postmap", ["-q", "blocked@example.com", access]);
      assertEquals(gone.code, 1, "the entry is still in the file: " + gone.stdout);
      // proxymap looks at its tables' files at most once a second.
      await new Promise((r) => setTimeout(r, 1100));
      const after = await session(port, [
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<blocked@example.com>",
        "QUIT",
      ]);
      assertEquals(after[3], "250 2.1.5 Ok", inst.readLog());
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
    }
  },
});
