// error: the error/retry delivery agent, as Postfix's error(8).
//
// Bounces every recipient of a delivery request (as `retry`: defers it),
// with the next-hop text as the reason. The reason may start with an RFC
// 3463 detail code; without one 5.0.0 (error) or 4.0.0 (retry) is used.

import type { ProgramContext } from "../lib/program.ts";
import { type DaemonContext, multiServer } from "../lib/daemon/server.ts";
import {
  agentConcurrency,
  agentEnvFromConfig,
  type DeliverySession,
  handleDeliveryConnection,
} from "../lib/deliver/agent.ts";
import { splitDsnText } from "../lib/dsn/status.ts";

/** Decides every recipient of one request: bounce, or defer when running as retry. */
export async function deliverError(session: DeliverySession, retry: boolean): Promise<void> {
  const { code, text } = splitDsnText(session.request.nexthop, retry ? "4.0.0" : "5.0.0");
  // A 2.x.x code makes no sense for a failure; Postfix's agent refuses it likewise.
  const dsn = code.startsWith("2.") ? (retry ? "4.0.0" : "5.0.0") : code;
  const soft = retry || dsn.startsWith("4.");
  const status = { dsn, relay: "none", text, diagType: "X-Postfix", diagText: text };
  for (const rcpt of session.request.recipients) {
    if (soft) await session.deferred(rcpt, status);
    else await session.bounced(rcpt, status);
  }
}

/** Runs the error (or retry) service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: ReturnType<typeof agentEnvFromConfig>;
  const retry = (d: DaemonContext) => d.service === "retry" || ctx.name === "retry";
  return multiServer(
    args,
    ctx,
    (conn, d) => handleDeliveryConnection(conn, env, (s) => deliverError(s, retry(d))),
    {
      // One process takes every request qmgr sends at once (default_process_limit
      // of them): a busy report would only make the master start another.
      concurrency: agentConcurrency,
      init(d) {
        env = agentEnvFromConfig(d.config);
      },
    },
  );
}
