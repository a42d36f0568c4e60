// spawn under a real master: a policy server (a shell script speaking the
// SMTPD_POLICY_README protocol) run per connection as user=, asked by smtpd
// through check_policy_service; the time limit kill and abnormal exits
// logged as Postfix's spawn logs them; bad attributes refused.

import * as net from "node:net";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { ensureTestUser, freePort, Instance, waitFor } from "../master/instance.ts";
import { session } from "../smtpd/helpers.ts";
import { parseSpawnAttributes, serviceTimeLimit } from "../../../daemons/spawn/mod.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { captureLog, FatalError } from "../../../lib/log.ts";
import { getpwnam } from "../../../lib/ffi/libc.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** The user the commands run as: nobody as root (the test user is mail_owner), else ourselves. */
function commandUser(): string {
  if (ensureTestUser()) return "nobody";
  return new TextDecoder().decode(new Deno.Command("id", { args: ["-un"] }).outputSync().stdout)
    .trim();
}

const policyScript = `#!/bin/sh
# A policy server: rejects no@..., answers DUNNO otherwise; one request per empty line.
rcpt=
while IFS= read -r line; do
  case "$line" in
    recipient=*) rcpt=\${line#recipient=} ;;
    "")
      if [ "$rcpt" = "no@mx.example.com" ]; then
        printf 'action=REJECT spawned policy says no (uid %s)\\n\\n' "$(id -u)"
      else
        printf 'action=DUNNO\\n\\n'
      fi
      rcpt= ;;
  esac
done
`;

/** Writes an executable script into the instance folder. */
function script(inst: Instance, name: string, text: string): string {
  const path = `${inst.dir}/${name}`;
  Deno.writeTextFileSync(path, text);
  Deno.chmodSync(path, 0o755);
  return path;
}

/** Connects to a unix service, sends `data`, returns everything until the server closes. */
function converse(path: string, data: string, ms = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    const s = net.connect({ path }, () => s.end(data));
    const timer = setTimeout(() => s.destroy(), ms);
    s.on("data", (b) => out += b.toString());
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

Deno.test({
  ...opts,
  name: "spawn runs a policy server per connection that smtpd asks through check_policy_service",
  async fn() {
    const port = freePort();
    const user = commandUser();
    const inst = await Instance.create(
      `127.0.0.1:${port} inet n - n - - smtpd\n` +
        `cleanup unix n - n - 0 cleanup\n` +
        `rewrite unix - - n - - trivial-rewrite\n` +
        `policy unix - n n - 0 spawn user=${user} argv=POLICY\n` +
        `echo unix - n n - 0 spawn user=${user} argv=/bin/sh DIR/echo.sh\n` +
        `fail unix - n n - 0 spawn user=${user} argv=/bin/sh DIR/fail.sh\n` +
        `slow unix - n n - 0 spawn user=${user} argv=/bin/sleep 30\n` +
        `none unix - n n - 0 spawn user=${user} argv=/nonexistent/command\n`,
      "myhostname = mx.example.com\nmydestination = $myhostname\nhash_queue_names =\n" +
        "mail_name = Postfix\nlocal_recipient_maps =\nsmtpd_error_sleep_time = 0\n" +
        "compatibility_level = 3.6\nmynetworks = 10.0.0.0/8\n" +
        "smtpd_client_connection_count_limit = 0\n" +
        "smtpd_recipient_restrictions = check_policy_service unix:private/policy, " +
        "permit_mynetworks, reject_unauth_destination\nslow_time_limit = 1s\n",
    );
    try {
      const policy = script(inst, "policy.sh", policyScript);
      script(inst, "echo.sh", "cat; echo done >&2\n");
      script(inst, "fail.sh", "exit 3\n");
      const cf = Deno.readTextFileSync(`${inst.dir}/master.cf`).replace("POLICY", policy)
        .replaceAll("DIR", inst.dir);
      Deno.writeTextFileSync(`${inst.dir}/master.cf`, cf);
      const started = await inst.postfix("start");
      assertEquals(started.code, 0, started.stderr);
      const r = await session(port, [
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<no@mx.example.com>",
        "RCPT TO:<yes@mx.example.com>",
        "QUIT",
      ]);
      const uid = new TextDecoder().decode(
        new Deno.Command("id", { args: ["-u", user] }).outputSync().stdout,
      ).trim();
      assertEquals(
        r[3],
        `554 5.7.1 <no@mx.example.com>: Recipient address rejected: spawned policy says no (uid ${uid})`,
        inst.readLog(),
      );
      assertEquals(r[4], "250 2.1.5 Ok");

      // Standard input and output, and standard error, reach the client.
      assertEquals(await converse(`${inst.queue}/private/echo`, "hello\n"), "hello\ndone\n");

      // Abnormal exits are logged.
      await converse(`${inst.queue}/private/fail`, "");
      const failed = await waitFor(() =>
        inst.readLog().includes("exit status 3") && inst.readLog()
      );
      assertStringIncludes(failed as string, "warning: command /bin/sh exit status 3");

      // A command that cannot be run.
      await converse(`${inst.queue}/private/none`, "");
      const none = await waitFor(() =>
        inst.readLog().includes("/nonexistent/command exit status") && inst.readLog()
      ) as string;
      assertStringIncludes(
        none,
        "fatal: spawn_comand: execvp /nonexistent/command: No such file or directory",
      );
      assertStringIncludes(none, "warning: command /nonexistent/command exit status 1");

      // slow_time_limit: the command is killed after one second.
      const t0 = Date.now();
      await converse(`${inst.queue}/private/slow`, "");
      assert(Date.now() - t0 < 8000);
      const killed = await waitFor(() =>
        inst.readLog().includes("time limit exceeded") && inst.readLog()
      ) as string;
      assertMatch(killed, /warning: \/bin\/sleep: process id \d+: command time limit exceeded/);
      assert(!killed.includes("/bin/sleep killed by signal"), killed);
      assertStringIncludes(killed, "postfix/spawn[");
    } finally {
      await inst.destroy();
    }
  },
});

function fatalText(fn: () => unknown): string {
  captureLog(() => {});
  try {
    fn();
  } catch (err) {
    if (err instanceof FatalError) return err.message;
    throw err;
  } finally {
    captureLog(undefined);
  }
  return "";
}

Deno.test("spawn refuses root, the mail owner, privileged groups, unknown users and attributes", () => {
  const config = configFromText("/tmp", "mail_owner = root\npolicy_time_limit = 7\n");
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["user=root", "argv=/bin/cat"], "policy", config)),
    "request to deliver as root",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["user=nosuchuser-x", "argv=/bin/cat"], "p", config)),
    "unknown user name: nosuchuser-x",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["user=nobody", "foo=bar"], "p", config)),
    "unknown attribute name: foo=bar",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["user=nobody"], "p", config)),
    "missing argv= attribute",
  );
  assertStringIncludes(
    fatalText(() =>
      parseSpawnAttributes(
        ["user=nobody", "argv=/bin/cat"],
        "p",
        configFromText("/tmp", "mail_owner = nobody\n"),
      )
    ),
    "request to deliver as mail system owner",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["user=nobody:root", "argv=/bin/cat"], "p", config)),
    "request to use privileged group id 0",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes(["argv=/bin/cat"], "p", config)),
    "request to deliver as root",
  );
  assertStringIncludes(
    fatalText(() => parseSpawnAttributes([], "p", config)),
    "missing user= attribute",
  );
  const attr = parseSpawnAttributes(["user=nobody", "argv=/bin/cat", "-u"], "policy", config);
  assertEquals(attr.argv, ["/bin/cat", "-u"]);
  assertEquals(attr.uid, getpwnam("nobody")?.uid);
  assertEquals(attr.timeLimit, 7);
  assertEquals(serviceTimeLimit(config, "other"), 1000);
});
