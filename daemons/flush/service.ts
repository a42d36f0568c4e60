// The requests of flush(8): add (site, queue id) to the site's logfile,
// send_site (move the site's deferred messages to incoming and wake qmgr),
// send_file (the same for one message), rfrsh and purge (send the logfiles
// nobody read for fast_flush_refresh_time, or all of them; remove the ones
// empty for fast_flush_purge_time). Each answers with one of Postfix's
// flush status codes.

import type { Config } from "../../lib/config/mod.ts";
import { queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { describe } from "../../lib/queue/file.ts";
import { sendTrigger } from "../../lib/ipc/trigger.ts";
import { debug, warn } from "../../lib/log.ts";
import { FlushStatus } from "../../lib/flush_client.ts";
import { compileDomainList, type DomainList } from "../trivial_rewrite/domains.ts";
import { moveFile } from "../qmgr/queue_files.ts";
import { appendToLog, listLogs, logPath, queueNameOk, siteLogName, takeLog } from "./logfile.ts";

/** What one flush process works with. */
export interface FlushEnv {
  config: Config;
  layout: QueueLayout;
  /** fast_flush_domains, compiled. */
  domains: DomainList;
  /** fast_flush_refresh_time and fast_flush_purge_time, in seconds. */
  refreshTime: number;
  purgeTime: number;
  /** The clock, in milliseconds (tests move it). */
  now: () => number;
  /** Wakes qmgr with trigger letters (tests replace it). */
  trigger: (letters: string) => Promise<void>;
}

/** Builds the environment from main.cf. */
export function flushEnvFromConfig(config: Config, layout: QueueLayout): FlushEnv {
  return {
    config,
    layout,
    domains: compileDomainList(
      config,
      "fast_flush_domains",
      config.get("fast_flush_domains"),
      "parent",
    ),
    refreshTime: config.time("fast_flush_refresh_time"),
    purgeTime: config.time("fast_flush_purge_time"),
    now: () => Date.now(),
    trigger: (letters) => wakeQmgr(config, letters),
  };
}

/** Sends trigger letters to public/qmgr; a warning when qmgr cannot be reached. */
async function wakeQmgr(config: Config, letters: string): Promise<void> {
  const service = config.get("queue_service_name") || "qmgr";
  const path = `${config.get("queue_directory")}/public/${service}`;
  try {
    Deno.statSync(path);
  } catch (err) {
    warn(`unable to look up public/${service}: ${describe(err)}`);
    return;
  }
  try {
    await sendTrigger(path, letters, 1000 * config.time("trigger_timeout"));
  } catch (err) {
    warn(`public/${service} trigger: ${(err as Error).message}`);
  }
}

/** Whether `site` is eligible: DENY when fast_flush_domains does not list it, FAIL when a table failed. */
async function eligible(env: FlushEnv, site: string): Promise<number | undefined> {
  const match = await env.domains.match(site);
  if (match === "match") return undefined;
  return match === "error" ? FlushStatus.fail : FlushStatus.deny;
}

/** add: records that `queueId` has mail deferred to `site`. */
export async function addService(env: FlushEnv, site: string, queueId: string): Promise<number> {
  debug(`flush_add_service: site ${site} queue_id ${queueId}`);
  const denied = await eligible(env, site);
  if (denied !== undefined) return denied;
  const name = siteLogName(site);
  if (name === undefined || !queueNameOk(name) || !queueNameOk(queueId)) return FlushStatus.bad;
  try {
    appendToLog(env.layout, name, queueId);
  } catch (err) {
    warn(`open fast flush logfile ${name}: ${describe(err)}`);
    return FlushStatus.fail;
  }
  return FlushStatus.ok;
}

/** send_site: delivers what the site's logfile lists now. */
export async function sendSiteService(env: FlushEnv, site: string): Promise<number> {
  debug(`flush_send_service: site ${site}`);
  const denied = await eligible(env, site);
  if (denied !== undefined) return denied;
  const name = siteLogName(site);
  if (name === undefined || !queueNameOk(name)) return FlushStatus.bad;
  debug(`site ${site} to path ${name}`);
  // Dead destinations are forgotten first so that qmgr tries the site at once.
  await env.trigger("F");
  const status = sendLog(env, name);
  await env.trigger("I");
  return status;
}

/** send_file: delivers one deferred message now. */
export async function sendFileService(env: FlushEnv, queueId: string): Promise<number> {
  if (!queueNameOk(queueId)) return FlushStatus.bad;
  if (moveToIncoming(env, queueId)) {
    debug(`flush_send_file_service: requesting delivery for queue_id ${queueId}`);
    await env.trigger("I");
  }
  return FlushStatus.ok;
}

/** Empties logfile `name`, moving every message it lists from deferred to incoming. */
function sendLog(env: FlushEnv, name: string): number {
  let ids: string[] | undefined;
  try {
    ids = takeLog(env.layout, name);
  } catch (err) {
    warn((err as Error).message);
    return FlushStatus.fail;
  }
  for (const id of ids ?? []) {
    debug(`flush_send_path: logfile ${name}: update queue file ${id} time stamps`);
    moveToIncoming(env, id);
  }
  return FlushStatus.ok;
}

/**
 * Moves a deferred message to incoming with its times set to now: a
 * deferred file's modification time is its next retry time, and qmgr takes
 * an incoming file at once. A message not in deferred (being delivered,
 * delivered, held) is left alone: if it is deferred again, its agent adds
 * it to the logfile again.
 */
function moveToIncoming(env: FlushEnv, queueId: string): boolean {
  const from = queueFilePath(env.layout, "deferred", queueId);
  const to = queueFilePath(env.layout, "incoming", queueId);
  const now = new Date(env.now());
  try {
    Deno.utimeSync(from, now, now);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      warn(`flush_one_file: update ${from} time stamps: ${describe(err)}`);
    }
    return false;
  }
  try {
    moveFile(from, to);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      warn(`flush_one_file: rename from ${from} to ${to}: ${describe(err)}`);
    }
    return false;
  }
  return true;
}

/**
 * rfrsh and purge: sends every non-empty logfile not read within
 * fast_flush_refresh_time (purge: every non-empty logfile), and removes
 * logfiles empty and unchanged for fast_flush_purge_time.
 */
export async function refreshService(env: FlushEnv, purge: boolean): Promise<number> {
  const now = env.now();
  for (const { name, path } of listLogs(env.layout)) {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) warn(`stat ${path}: ${describe(err)}`);
      continue;
    }
    if (st.size === 0) {
      const unchanged = (now - (st.mtime?.getTime() ?? now)) / 1000;
      if (unchanged > env.purgeTime) {
        try {
          Deno.removeSync(path);
          debug(
            `flush_refresh_service: unlink ${name}, empty and unchanged for ${
              Math.floor(env.purgeTime / 86400)
            } days`,
          );
        } catch (err) {
          warn(`remove logfile ${name}: ${describe(err)}`);
        }
      } else debug(`flush_refresh_service: skip logfile ${name} - empty log`);
      continue;
    }
    const unread = (now - (st.atime?.getTime() ?? 0)) / 1000;
    if (!purge && unread < env.refreshTime) {
      debug(
        `flush_refresh_service: skip logfile ${name}, unread for <${
          Math.floor(env.refreshTime / 3600)
        } hours(s) `,
      );
      continue;
    }
    debug(`flush_refresh_service: flush logfile ${name}`);
    sendLog(env, name);
    debug(`flush_send_path: requesting delivery for logfile ${name}`);
    await env.trigger("I");
  }
  return FlushStatus.ok;
}

/** The logfile path of a site (tests and tools), or undefined when the name is not valid. */
export function siteLogPath(env: FlushEnv, site: string): string | undefined {
  const name = siteLogName(site);
  return name && queueNameOk(name) ? logPath(env.layout, name) : undefined;
}
