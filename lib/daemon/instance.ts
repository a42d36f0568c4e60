// An instance's run-time files: the queue tree the master needs (created if
// missing, with lib/queue's modes) and pid/master.pid, locked while a master
// runs so that two masters never share one queue.

import type { Config } from "../config/mod.ts";
import { createQueueTree, layoutFromConfig } from "../queue/layout.ts";
import { EAGAIN, LibcError, lockFile, rewriteFd } from "../ffi/libc.ts";
import { fatal } from "../log.ts";
import type { Credentials } from "./users.ts";

/** queue_directory/pid/master.pid. */
export function masterPidPath(config: Config): string {
  return `${config.get("queue_directory")}/pid/master.pid`;
}

/** The pid recorded in master.pid, or undefined. */
export function readMasterPid(config: Config): number | undefined {
  try {
    const pid = parseInt(Deno.readTextFileSync(masterPidPath(config)).trim(), 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the missing parts of the queue tree (and data_directory). */
export function prepareQueue(config: Config, owner?: Credentials): void {
  const queue = config.get("queue_directory");
  try {
    createQueueTree(layoutFromConfig(config), owner);
    const data = config.get("data_directory");
    if (data) {
      Deno.mkdirSync(data, { recursive: true, mode: 0o700 });
      if (owner) Deno.chownSync(data, owner.uid, owner.gid);
    }
  } catch (err) {
    fatal(`chdir ${queue}: ${(err as Error).message.replace(/ \(os error.*$/, "")}`);
  }
}

/**
 * Locks and writes pid/master.pid; fatal with Postfix's wording when another
 * master holds it. The returned descriptor keeps the lock: close it to release.
 */
export function lockMasterPid(config: Config): number {
  let fd: number;
  try {
    fd = lockFile(masterPidPath(config));
  } catch (err) {
    if (err instanceof LibcError && err.errno === EAGAIN) {
      fatal(
        "open lock file pid/master.pid: unable to set exclusive lock: Resource temporarily unavailable",
      );
    }
    fatal(`open lock file pid/master.pid: ${(err as Error).message}`);
  }
  // Postfix writes the pid right-aligned in a 32-character field.
  rewriteFd(fd, `${String(Deno.pid).padStart(32)}\n`);
  return fd;
}
