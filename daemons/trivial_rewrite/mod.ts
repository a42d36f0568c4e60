// trivial-rewrite: address rewriting and resolution, as Postfix's
// trivial-rewrite(8).
//
// Rewrites addresses to canonical form for cleanup ("rewrite" requests in
// the local and remote contexts) and resolves recipients to a transport,
// next hop, recipient and address class for qmgr, smtpd and verify
// ("resolve", "resolve_verify"). One event-driven process serves every
// client on private/rewrite; lib/rewrite_client.ts is the client side.

import { eventServer } from "../../lib/daemon/server.ts";
import { fatal } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import { DictError } from "../../maps/mod.ts";
import { serveClient, type ServiceState } from "./service.ts";
import { settingsFrom } from "./settings.ts";

/** Runs the trivial-rewrite service under the daemon runtime. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let state: ServiceState | undefined;
  let from = "";
  return eventServer(args, ctx, (conn) => serveClient(conn, state!, from), {
    // Connections are long-lived (clients keep theirs): no per-request time limit.
    requestTimeout: 2_000_000,
    async init(d) {
      from = d.type === "unix" ? `private/${d.service} socket` : `${d.service} socket`;
      try {
        state = { config: d.config, settings: await settingsFrom(d.config) };
      } catch (err) {
        if (err instanceof DictError) fatal(err.message);
        throw err;
      }
    },
  });
}
