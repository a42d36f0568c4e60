// pipe's settings from main.cf and master.cf: TRANSPORT_time_limit over
// command_time_limit, recipient_delimiter, the environment lists.

import { assertEquals } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { parseDaemonArgs } from "../../../lib/daemon/args.ts";
import type { DaemonContext } from "../../../lib/daemon/server.ts";
import { pipeSettings } from "../../../daemons/pipe/mod.ts";

function context(main: string, service: string, argv: string[]): DaemonContext {
  const args = parseDaemonArgs(["-n", service, "-t", "unix", ...argv], "pipe");
  return {
    config: configFromText("/etc/posthorn-test", main, args.overrides),
    service,
    type: "unix",
    program: "pipe",
    verbose: 0,
    managed: true,
    args,
  };
}

const attrs = ["user=nobody", "argv=/bin/cat"];

Deno.test("pipeSettings() takes TRANSPORT_time_limit, else command_time_limit", () => {
  const main = "mail_owner = no-such-owner\nqueue_directory = /q\n";
  assertEquals(pipeSettings(context(main, "uucp", attrs)).timeLimit, 1000);
  assertEquals(
    pipeSettings(context(main + "command_time_limit = 2m\n", "uucp", attrs)).timeLimit,
    120,
  );
  assertEquals(
    pipeSettings(context(main + "uucp_time_limit = 30s\n", "uucp", attrs)).timeLimit,
    30,
  );
  // A -o override in master.cf wins.
  assertEquals(
    pipeSettings(context(main, "uucp", ["-o", "uucp_time_limit=5", ...attrs])).timeLimit,
    5,
  );
});

Deno.test("pipeSettings() reads the service's attributes and the shared parameters", () => {
  const s = pipeSettings(
    context(
      "mail_owner = no-such-owner\nqueue_directory = /q\nrecipient_delimiter = +-\n",
      "filter",
      ["flags=Rq", ...attrs],
    ),
  );
  assertEquals([s.service, s.queueDirectory, s.delimiters], ["filter", "/q", "+-"]);
  assertEquals([...s.attrs.flags].join(""), "Rq");
  assertEquals(s.attrs.argv, ["/bin/cat"]);
  assertEquals(s.exportEnvironment, ["TZ", "MAIL_CONFIG", "LANG"]);
  assertEquals(s.masterCf, "/etc/posthorn-test/master.cf");
});
