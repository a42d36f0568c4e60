// A whole relaying instance for end-to-end tests and the relay benchmark:
// smtpd on a loopback port takes mail from 127.0.0.0/8, cleanup queues it,
// qmgr hands it to smtp, which relays everything to `relayhost` (with
// scache, as in Postfix's default master.cf, for the connection cache).

import { projectRoot } from "../../run.ts";
import { freePort, Instance } from "../master/instance.ts";

const launcher = `${projectRoot}tests/daemons/smtp/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

/** A started relay instance and its SMTP port. */
export interface RelayInstance {
  inst: Instance;
  port: number;
}

/** master.cf of the relay path. */
export function relayMasterCf(port: number): string {
  return `
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
anvil     unix  -       -       n       -       1       anvil
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
scache    unix  -       -       n       -       1       scache
`;
}

/** Creates and starts an instance relaying to `relayhost` (e.g. `[127.0.0.1]:2525`). */
export async function startRelayInstance(
  relayhost: string,
  extra: string[] = [],
): Promise<RelayInstance> {
  const port = freePort();
  const inst = await Instance.create(
    relayMasterCf(port),
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = relay.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "mynetworks = 127.0.0.0/8",
      `relayhost = ${relayhost}`,
      "hash_queue_names =",
      "smtpd_error_sleep_time = 0",
      "local_recipient_maps =",
      "compatibility_level = 3.6",
      ...extra,
    ].join("\n"),
  );
  const start = await inst.postfix("start");
  if (start.code !== 0) {
    await inst.destroy();
    throw new Error(`postfix start: ${start.stderr}`);
  }
  return { inst, port };
}
