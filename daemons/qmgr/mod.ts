// qmgr: the queue manager, as Postfix's qmgr(8) (also run as nqmgr), and as
// oqmgr(8), the old queue manager: the same without preemption.
//
// Resident: moves mail from incoming (and deferred, when due) into active,
// resolves recipients through trivial-rewrite, and schedules deliveries to
// the transports' agents over private/TRANSPORT (core.ts). Listens on
// public/qmgr for triggers: W and I scan incoming, D scans deferred, A
// scans everything ignoring retry times (sendmail -q), F revives dead
// destinations. Scans deferred every queue_run_delay on its own.

import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, triggerServer } from "../../lib/daemon/server.ts";
import { resolveAddress, resolveVerifyAddress, rewriteAddress } from "../../lib/rewrite_client.ts";
import { VerifyStat, verifyUpdate } from "../../lib/verify_client.ts";
import { flushAddRecipient } from "../../lib/flush_client.ts";
import { bounceClient, bounceRequest } from "../../lib/bounce_client.ts";
import { defaultVerpDelimitersError } from "../../lib/verp.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { fatal, warn } from "../../lib/log.ts";
import { Qmgr, type QmgrDeps, TransportUnavailable } from "./core.ts";
import { type QmgrSettings, qmgrSettings } from "./settings.ts";
import { type Config } from "../../lib/config/mod.ts";
import { parseMasterCf } from "../../lib/config/master_cf.ts";

/** master.cf's process limits of unix services ("-": default_process_limit), by name. */
export function masterProcessLimits(config: Config): Map<string, number> {
  const limits = new Map<string, number>();
  const file = `${config.configDir}/master.cf`;
  try {
    for (const e of parseMasterCf(Deno.readTextFileSync(file), file)) {
      if (e.type !== "unix" || e.processLimit === "-") continue;
      limits.set(e.service, parseInt(e.processLimit, 10) || 0);
    }
  } catch (err) {
    // No master.cf (a qmgr started by hand with -L): every transport gets the default.
    if (!(err instanceof Deno.errors.NotFound)) {
      warn(`${(err as Error).message}; using default_process_limit for every transport`);
    }
  }
  return limits;
}

/**
 * oqmgr(8), the old queue manager: the same strategies (leaky bucket,
 * fairness, slow start, round robin, backoff, dead-destination cache)
 * without nqmgr's preemptive job scheduling, so every transport runs with
 * delivery slot cost 0 and messages go in the order they entered the
 * active queue.
 */
export function withoutPreemption(settings: QmgrSettings): QmgrSettings {
  const transport = settings.transport.bind(settings);
  return { ...settings, transport: (name) => ({ ...transport(name), slotCost: 0 }) };
}

/** The core's dependencies for a daemon: the real resolver, agents and bounce service. */
export function daemonDeps(d: DaemonContext): QmgrDeps {
  const config = d.config;
  const queue = config.get("queue_directory");
  const layout = layoutFromConfig(config);
  const services = {
    bounce: config.get("bounce_service_name") || "bounce",
    defer: config.get("defer_service_name") || "defer",
    trace: config.get("trace_service_name") || "trace",
  };
  return {
    layout,
    settings: d.program === "oqmgr"
      ? withoutPreemption(qmgrSettings(config, masterProcessLimits(config)))
      : qmgrSettings(config, masterProcessLimits(config)),
    resolve: (sender, address) => resolveAddress(config, sender, address),
    resolveVerify: (sender, address) => resolveVerifyAddress(config, sender, address),
    canonicalize: (address) => rewriteAddress(config, "local", address),
    verify: async (address, status, why) =>
      await verifyUpdate(config, address, status, why) === VerifyStat.OK,
    verifyNegativeCache: config.bool("address_verify_negative_cache"),
    async deliver(transport, request) {
      const path = `${queue}/private/${transport}`;
      try {
        Deno.statSync(path);
      } catch {
        throw new TransportUnavailable(
          `connect to transport private/${transport}: No such file or directory`,
        );
      }
      try {
        return await sendDeliverRequest(path, request);
      } catch (err) {
        if (err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.NotFound) {
          throw new TransportUnavailable(
            `connect to transport private/${transport}: ${(err as Error).message}`,
          );
        }
        throw err;
      }
    },
    bounce: bounceClient(queue, services),
    // request=verp: the flush of a VERP message (bounce(8) sends one notice per recipient).
    bounceVerp: async (log, msg, delims) =>
      await bounceRequest(`${queue}/private/${services[log]}`, {
        request: "verp",
        log,
        queue_name: msg.queueName,
        queue_id: msg.queueId,
        encoding: msg.encoding,
        smtputf8: msg.smtputf8,
        sender: msg.sender,
        envid: msg.envid,
        ret: msg.ret,
        verp_delims: delims,
      }) === 0,
    flush: (address, queueId) => flushAddRecipient(config, address, queueId),
  };
}

/** Runs the queue manager under the trigger skeleton. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let core: Qmgr | undefined;
  const kick = (what: string) => {
    core?.trigger(what).catch((err) => warn(`trigger: ${(err as Error).message}`));
  };
  return triggerServer(args, ctx, (data) => kick(new TextDecoder().decode(data)), {
    ignoreMaxIdle: true,
    ignoreMaxUse: true,
    init(d) {
      const verpError = defaultVerpDelimitersError(d.config);
      if (verpError) fatal(verpError);
      const deps = daemonDeps(d);
      core = new Qmgr(deps);
      const timer = setInterval(() => kick("D"), deps.settings.queueRunDelay * 1000);
      Deno.unrefTimer(timer);
      core.start().catch((err) => warn(`start: ${(err as Error).message}`));
    },
  });
}
