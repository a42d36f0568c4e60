// pickup: local mail pickup, as Postfix's pickup(8).
//
// Waits for wakeup triggers (from postdrop/sendmail, and the master's
// periodic wakeup), scans the maildrop queue and hands each complete file to
// the cleanup service (scan.ts); a file is removed only once cleanup has
// queued its message.

import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, triggerServer } from "../../lib/daemon/server.ts";
import { cleanupFlagsFor, CleanupRequestFlag } from "../../lib/cleanup_client.ts";
import { type PickupEnv, scanMaildrop } from "./scan.ts";
import type { Config } from "../../lib/config/mod.ts";
import { isAuthorizedSubmitter, passwdByName, submitterLogin } from "../../lib/queue/submitter.ts";

/** Seconds between scans when no master sends wakeups (a daemon started with -L). */
const standaloneInterval = 60;

function environment(ctx: DaemonContext): PickupEnv {
  const c = ctx.config;
  const queue = c.get("queue_directory");
  return {
    maildrop: `${queue}/maildrop`,
    cleanupSocket: `${queue}/public/${c.get("cleanup_service_name") || "cleanup"}`,
    // Refusals come back to the sender as bounces, as Postfix's pickup asks cleanup.
    flags: CleanupRequestFlag.BOUNCE | cleanupFlagsFor(c.list("receive_override_options")) |
      // Local submissions are the "sendmail" class of smtputf8_autodetect_classes.
      (c.bool("smtputf8_enable") && c.list("smtputf8_autodetect_classes").includes("sendmail")
        ? CleanupRequestFlag.AUTOUTF8
        : 0),
    myhostname: c.get("myhostname"),
    mailName: c.get("mail_name") || "Postfix",
    lineLengthLimit: c.int("line_length_limit") || 2048,
    maySubmit: submitCheck(c),
  };
}

/**
 * authorized_submit_users as pickup applies it to a maildrop file's owner;
 * undefined when everyone may submit (the default, static:anyone).
 */
function submitCheck(c: Config): PickupEnv["maySubmit"] {
  const list = c.list("authorized_submit_users");
  if (list.length === 1 && list[0].startsWith("static:")) return undefined;
  const owner = passwdByName(c.get("mail_owner"));
  return async (uid) => {
    const login = submitterLogin(uid);
    if (uid === 0 || uid === owner?.uid) return { ok: true, login };
    const ok = await isAuthorizedSubmitter(
      list,
      login,
      async (spec) => (await import("../../maps/mod.ts")).openMap(spec, { config: c }),
    );
    return { ok, login };
  };
}

/** Runs the pickup service under the daemon runtime's trigger skeleton. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: PickupEnv | undefined;
  let scanning: Promise<number> | undefined;
  // Scans never overlap: a wakeup during a scan waits for it, then scans again.
  const scan = async () => {
    while (scanning) await scanning;
    scanning = scanMaildrop(env!);
    try {
      await scanning;
    } finally {
      scanning = undefined;
    }
  };
  return triggerServer(args, ctx, () => scan(), {
    ignoreMaxIdle: true,
    async init(d) {
      env = environment(d);
      if (!d.managed) setInterval(() => scan().catch(() => {}), standaloneInterval * 1000);
      await scan();
    },
  });
}
