// The master's master.cf checks, with the wording of Postfix 3.7's master
// (as its log shows for each input below).

import { assertThrows } from "../../assert.ts";
import { checkMasterCf, MasterCfCheckError } from "../../../lib/daemon/master_cf_check.ts";

const cases: [string, string][] = [
  ["bad", `missing "transport type" field`],
  ["bad unix", `missing "private" field`],
  ["bad unix -", `missing "unprivileged" field`],
  ["bad unix - -", `missing "chroot" field`],
  ["bad unix - - n", `missing "wakeup_time" field`],
  ["bad unix - - n -", `missing "max_proc" field`],
  ["bad unix - - n - -", `missing "command" field`],
  ["bad foo - - n - - echo", "bad transport type: foo"],
  ["bad unix x - n - - cmd", `field "private": bad value: "x"`],
  ["bad unix - x n - - cmd", `field "unprivileged": bad value: "x"`],
  ["bad unix - - x - - cmd", `field "chroot": bad value: "x"`],
  ["bad unix - - n x - cmd", `field "wakeup_time": bad value: "x"`],
  ["bad unix - - n - x cmd", `field "max_proc": bad value: "x"`],
  ["bad inet y - n - - cmd", "inet service cannot be private"],
];

for (const [line, message] of cases) {
  Deno.test(`checkMasterCf() refuses "${line}" with "${message}"`, () => {
    const source = `# comment\npostlog unix-dgram n - n - 1 postlogd\n${line}\n`;
    assertThrows(
      () => checkMasterCf(source, "/etc/postfix/master.cf"),
      MasterCfCheckError,
      `/etc/postfix/master.cf: line 3: ${message}`,
    );
  });
}

Deno.test("checkMasterCf() accepts Postfix's default entries with continuation lines", () => {
  checkMasterCf(
    "smtp inet n - y - - smtpd\ntlsmgr unix - - y 1000? 1 tlsmgr\n" +
      "relay unix - - y - - smtp\n  -o syslog_name=postfix/$service_name\n",
    "master.cf",
  );
});
