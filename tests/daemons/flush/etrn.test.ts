// flush(8) in a whole instance: mail deferred to two fast_flush_domains
// sites; ETRN for one (through smtpd on its master.cf port) sends exactly
// that site's mail back through qmgr while the other site's waits for its
// retry time; postqueue -s then sends the other, postqueue -i one message; ETRN for a site that is not
// eligible gets 459, bad syntax 501.

import { assert, assertEquals } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { freePort, Instance, waitFor } from "../master/instance.ts";
import { session } from "../smtpd/helpers.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { flushAddRecipient, FlushStatus } from "../../../lib/flush_client.ts";
import { layoutFromConfig, queueFilePath } from "../../../lib/queue/layout.ts";

const launcher = `${projectRoot}tests/daemons/qmgr/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

function masterCf(port: number, closed: number): string {
  return `
127.0.0.1:${port} inet n - n - - smtpd
127.0.0.1:${closed} inet n - n - - smtpd -o smtpd_etrn_restrictions=reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
retry     unix  -       -       n       -       -       error
flush     unix  n       -       n       1000?   0       flush
`;
}

/** How many times the log says the recipient's mail in `id` was deferred. */
function deferrals(log: string, id: string): number {
  return log.split("\n").filter((l) => l.includes(`${id}: to=<`) && l.includes("status=deferred"))
    .length;
}

async function send(inst: Instance, rcpt: string): Promise<string> {
  const sent = await runProgram("sendmail", ["-f", "sender@origin.example", rcpt], {
    stdin: `From: sender@origin.example\nTo: ${rcpt}\nSubject: for ${rcpt}\n\nBody.\n`,
    env: { MAIL_CONFIG: inst.dir },
  });
  assertEquals(sent.code, 0, sent.stderr);
  await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
  const line = await waitFor(
    () => new RegExp(`(\\w+): to=<${rcpt}>.*status=deferred`).exec(inst.readLog()),
    30_000,
  );
  assert(line, `no deferral for ${rcpt}:\n${inst.readLog()}`);
  return line![1];
}

Deno.test({
  name: "ETRN flushes exactly the site asked for; postqueue -s the other, postqueue -i one message",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const port = freePort();
    const closed = freePort();
    const inst = await Instance.create(
      masterCf(port, closed),
      [
        `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
        "myhostname = mx.example.com",
        "mydomain = example.com",
        "myorigin = example.com",
        "mydestination =",
        "compatibility_level = 3.6",
        "relay_domains = site-a.example, site-b.example",
        "default_transport = retry:4.4.1 site is offline",
        "relay_transport = retry:4.4.1 site is offline",
        // No spontaneous retry during the test: only a flush brings mail back.
        "minimal_backoff_time = 3h",
        "maximal_backoff_time = 4h",
        "queue_run_delay = 3h",
        "smtpd_error_sleep_time = 0",
      ].join("\n"),
    );
    // One posthorn_launcher: the pipeline launcher replaces the instance's.
    const mainCf = Deno.readTextFileSync(`${inst.dir}/main.cf`).split("\n");
    const first = mainCf.findIndex((l) => l.startsWith("posthorn_launcher"));
    mainCf.splice(first, 1);
    Deno.writeTextFileSync(`${inst.dir}/main.cf`, mainCf.join("\n"));
    try {
      const start = await inst.postfix("start");
      assertEquals(start.code, 0, start.stderr);
      const a1 = await send(inst, "one@site-a.example");
      const a2 = await send(inst, "two@site-a.example");
      const b1 = await send(inst, "three@site-b.example");
      // The retry agent told the flush service of each deferral (defer logging's flush_add).
      const config = loadConfig({ configDir: inst.dir });
      assertEquals(
        Deno.readTextFileSync(`${inst.queue}/flush/site_a_example`),
        `${a1}\n${a2}\n`,
      );
      assertEquals(Deno.readTextFileSync(`${inst.queue}/flush/site_b_example`), `${b1}\n`);
      assertEquals(await flushAddRecipient(config, "x@elsewhere.example", b1), FlushStatus.deny);
      const layout = layoutFromConfig(config);
      const bPath = queueFilePath(layout, "deferred", b1);
      await waitFor(() => {
        try {
          return Deno.statSync(bPath).mtime!.getTime() > Date.now() + 3600_000;
        } catch {
          return false;
        }
      });
      const bRetry = Deno.statSync(bPath).mtime!.getTime();

      const r = await session(port, [
        "EHLO client.example",
        "ETRN site-a.example",
        "ETRN other.example",
        "ETRN bad..domain",
        "ETRN",
        "QUIT",
      ]);
      assertEquals(r.slice(2), [
        "250 Queuing started",
        "459 <other.example>: service unavailable",
        "501 Error: invalid parameter syntax",
        "500 Syntax: ETRN domain",
        "221 2.0.0 Bye",
      ]);
      // smtpd_etrn_restrictions decide before the flush service is asked.
      const refused = await session(closed, ["EHLO client.example", "ETRN site-b.example", "QUIT"]);
      assertEquals(refused[2], "554 5.7.1 <site-b.example>: Etrn command rejected: Access denied");
      const retried = await waitFor(
        () => deferrals(inst.readLog(), a1) === 2 && deferrals(inst.readLog(), a2) === 2,
        30_000,
      );
      assert(retried, "site-a mail was not retried:\n" + inst.readLog());
      // site-b's message was not touched: one attempt, same retry time.
      assertEquals(deferrals(inst.readLog(), b1), 1);
      assertEquals(Deno.statSync(bPath).mtime!.getTime(), bRetry);
      // The flush emptied site-a's logfile; the retries, deferred again, are in it anew.
      assertEquals(
        Deno.readTextFileSync(`${inst.queue}/flush/site_a_example`).trim().split("\n").sort(),
        [a1, a2].sort(),
      );
      const log = inst.readLog();
      assert(log.includes("warning: reject: ETRN other.example... from "), log);

      const s = await runProgram("postqueue", ["-c", inst.dir, "-s", "site-b.example"]);
      assertEquals([s.code, s.stderr], [0, ""]);
      assert(
        await waitFor(() => deferrals(inst.readLog(), b1) === 2, 30_000),
        "postqueue -s did not send site-b's mail:\n" + inst.readLog(),
      );
      // postqueue -i: one message, whatever its site.
      const i = await runProgram("postqueue", ["-c", inst.dir, "-i", a1]);
      assertEquals([i.code, i.stderr], [0, ""]);
      assert(
        await waitFor(() => deferrals(inst.readLog(), a1) === 3, 30_000),
        "postqueue -i did not send the message:\n" + inst.readLog(),
      );
      assertEquals(deferrals(inst.readLog(), a2), 2);
      const denied = await runProgram("postqueue", ["-c", inst.dir, "-s", "other.example"]);
      assertEquals(denied.code, 69);
      assertEquals(
        denied.stderr,
        'postqueue: fatal: Flush service is not configured for destination "other.example"\n',
      );
    } finally {
      if (Deno.env.get("SHOW_LOG")) console.log(inst.readLog());
      await inst.destroy();
    }
  },
});
