// The embedded default instance: scripts/start.ts creates a self-contained
// instance in a fresh folder, runs the master in the foreground with the log
// on standard output, and stops with nothing left behind on SIGTERM.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { projectRoot, runProgram } from "../run.ts";
import { alive, descendants, waitFor } from "../daemons/master/instance.ts";

Deno.test("scripts/start.ts creates an instance, runs it, and stops cleanly on SIGTERM", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const parent = await Deno.makeTempDir({ prefix: "posthorn-start-" });
  await Deno.chmod(parent, 0o755);
  const dir = `${parent}/instance`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-ffi", "--unstable-net", `${projectRoot}scripts/start.ts`, dir],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = child.output();
  try {
    const pidFile = `${dir}/queue/pid/master.pid`;
    const started = await waitFor(() => {
      try {
        return parseInt(Deno.readTextFileSync(pidFile).trim(), 10) > 0;
      } catch {
        return false;
      }
    }, 20_000);
    assert(started, "the master did not start");
    const main = await Deno.readTextFile(`${dir}/main.cf`);
    assertStringIncludes(main, `queue_directory = ${dir}/queue`);
    assertStringIncludes(main, "maillog_file = /dev/stdout");
    assertStringIncludes(main, "inet_interfaces = 127.0.0.1");
    const master = parseInt(Deno.readTextFileSync(pidFile).trim(), 10);
    // A first message to the user running the instance lands in the instance's spool.
    const user = Deno.uid() === 0 ? "root" : Deno.env.get("USER") ?? "";
    if (user) {
      const sent = await runProgram("sendmail", [`${user}@localhost`], {
        stdin: "Subject: first message\n\nHello.\n",
        env: { MAIL_CONFIG: dir },
      });
      assertEquals(sent.code, 0, sent.stderr);
      const mailbox = `${dir}/mail/${user}`;
      const delivered = await waitFor(() => {
        try {
          return Deno.readTextFileSync(mailbox).includes("Subject: first message");
        } catch {
          return false;
        }
      }, 30_000);
      assert(delivered, `no delivery to ${mailbox}`);
      assertMatch(Deno.readTextFileSync(mailbox), /^From MAILER-DAEMON|^From \S+ /);
    }
    await new Promise((r) => setTimeout(r, 500));
    const children = descendants(master);
    child.kill("SIGTERM");
    const out = await output;
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
    assertStringIncludes(stdout, `Posthorn instance in ${dir} (created now)`);
    assertMatch(stdout, /postfix\/master\[\d+\]: daemon started -- version/);
    assertMatch(stdout, /postfix\/master\[\d+\]: terminating on signal 15/);
    if (user) {
      assertMatch(stdout, /postfix\/local\[\d+\]: \w+: to=<.*status=sent \(delivered to mailbox\)/);
    }
    assert(!alive(master), "master left running");
    assert(await waitFor(() => children.every((p) => !alive(p)), 5000), "daemons left running");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await Deno.remove(parent, { recursive: true }).catch(() => {});
  }
});
