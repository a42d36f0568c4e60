// Who daemons run as. As root, the master runs unprivileged services as
// mail_owner and refuses, as Postfix does, a mail_owner that is missing or
// has a privileged user id; as an ordinary user, everything runs as that user.

import type { Config } from "../config/mod.ts";
import { getpwnam } from "../ffi/libc.ts";
import { fatal } from "../log.ts";

/** User and group ids a child is started with. */
export interface Credentials {
  uid: number;
  gid: number;
}

/** mail_owner's ids when running as root; undefined for an ordinary user. */
export function mailOwnerCredentials(config: Config): Credentials | undefined {
  if (Deno.uid() !== 0) return undefined;
  const name = config.get("mail_owner");
  const file = `${config.configDir}/main.cf`;
  const entry = getpwnam(name);
  if (!entry) fatal(`file ${file}: parameter mail_owner: unknown user name value: ${name}`);
  if (entry.uid === 0) {
    fatal(`file ${file}: parameter mail_owner: user ${name} has privileged user ID: ${entry.uid}`);
  }
  return { uid: entry.uid, gid: entry.gid };
}
