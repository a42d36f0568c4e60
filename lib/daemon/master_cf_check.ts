// The master's own checks of master.cf, with the wording Postfix's master
// uses (`/etc/postfix/master.cf: line 3: bad transport type: foo`), which
// differs from postconf's. lib/config's parseMasterCf builds the entries once
// these checks pass.

import { logicalLines } from "../config/logical_lines.ts";
import { serviceTypes, splitWords } from "../config/master_cf.ts";

/** A master.cf entry the master refuses, worded as Postfix's master words it. */
export class MasterCfCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MasterCfCheckError";
  }
}

/** The fields after the service name, as Postfix's master names them. */
const fieldNames = [
  "transport type",
  "private",
  "unprivileged",
  "chroot",
  "wakeup_time",
  "max_proc",
  "command",
];

/** Checks every entry of master.cf; throws MasterCfCheckError for the first bad one. */
export function checkMasterCf(source: string, file: string): void {
  for (const { text, line } of logicalLines(source)) {
    const fail = (why: string): never => {
      throw new MasterCfCheckError(`${file}: line ${line}: ${why}`);
    };
    const words = splitWords(text);
    for (let i = 0; i < fieldNames.length; i++) {
      if (words[i + 1] === undefined) fail(`missing "${fieldNames[i]}" field`);
    }
    const [, type, priv, unpriv, chroot, wakeup, maxproc] = words;
    if (!(serviceTypes as readonly string[]).includes(type)) fail(`bad transport type: ${type}`);
    const check = (name: string, value: string, ok: RegExp) => {
      if (!ok.test(value)) fail(`field "${name}": bad value: "${value}"`);
    };
    check("private", priv, /^[-yn]$/);
    check("unprivileged", unpriv, /^[-yn]$/);
    check("chroot", chroot, /^[-yn]$/);
    check("wakeup_time", wakeup, /^(-|\d+\??)$/);
    check("max_proc", maxproc, /^(-|\d+)$/);
    if (type === "inet" && priv === "y") fail("inet service cannot be private");
  }
}
