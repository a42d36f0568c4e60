// cleanup: canonicalize and enqueue mail, as Postfix's cleanup(8).
//
// Receives one message per connection from pickup, smtpd, qmqpd or bounce
// (service.ts has the protocol), adds missing headers, applies the address
// maps, header/body checks and limits (core.ts), writes the queue file into
// incoming under the commit rule and wakes the queue manager.

import type { ProgramContext } from "../../lib/program.ts";
import { multiServer } from "../../lib/daemon/server.ts";
import { fatal } from "../../lib/log.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { DictError } from "../../maps/mod.ts";
import { serveCleanup, type ServiceEnv } from "./service.ts";
import { settingsFrom } from "./settings.ts";
import { rewriteAddress as rewriteClient } from "../../lib/rewrite_client.ts";
import { quoteAddress, unquoteAddress } from "../../lib/address/mod.ts";
import { openCleanupTables } from "./tables.ts";
import { bounceClient } from "../../lib/bounce_client.ts";
import { defaultVerpDelimitersError } from "../../lib/verp.ts";

/** Runs the cleanup service under the daemon runtime. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: ServiceEnv | undefined;
  return multiServer(args, ctx, (conn) => serveCleanup(conn, env!), {
    init(d) {
      const verpError = defaultVerpDelimitersError(d.config);
      if (verpError) fatal(verpError);
      try {
        env = {
          layout: layoutFromConfig(d.config),
          queueService: d.config.get("queue_service_name") || "qmgr",
          longIds: d.config.bool("enable_long_queue_ids"),
          bounce: bounceClient(d.config.get("queue_directory"), {
            bounce: d.config.get("bounce_service_name") || "bounce",
            defer: d.config.get("defer_service_name") || "defer",
            trace: d.config.get("trace_service_name") || "trace",
          }),
          resolution: d.config.int("delay_logging_resolution_limit"),
          settings: settingsFrom(d.config),
          tables: {
            ...openCleanupTables(d.config),
            // Canonical form is trivial-rewrite's business, asked over its socket as Postfix does.
            rewrite: async (rule, address) =>
              unquoteAddress(await rewriteClient(d.config, rule, quoteAddress(address))),
          },
        };
      } catch (err) {
        if (err instanceof DictError) fatal(err.message);
        throw err;
      }
    },
  });
}
