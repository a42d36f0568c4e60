// discard: the discard delivery agent, as Postfix's discard(8).
//
// Pretends to deliver every recipient of a delivery request and logs the
// next-hop text as the reason (`status=sent (reason)`); the reason may start
// with an RFC 3463 detail code (default 2.0.0). Recipients are marked done;
// NOTIFY=SUCCESS recipients get a success notice through trace.

import type { ProgramContext } from "../lib/program.ts";
import { multiServer } from "../lib/daemon/server.ts";
import {
  agentConcurrency,
  agentEnvFromConfig,
  type DeliverySession,
  handleDeliveryConnection,
} from "../lib/deliver/agent.ts";
import { splitDsnText } from "../lib/dsn/status.ts";

/** Marks every recipient of one request as delivered. */
export async function deliverDiscard(session: DeliverySession): Promise<void> {
  const { code, text } = splitDsnText(session.request.nexthop, "2.0.0");
  const dsn = code.startsWith("2.") ? code : "2.0.0";
  for (const rcpt of session.request.recipients) {
    await session.sent(rcpt, { dsn, relay: "none", text, diagType: "X-Postfix", diagText: text });
  }
}

/** Runs the discard service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: ReturnType<typeof agentEnvFromConfig>;
  return multiServer(args, ctx, (conn) => handleDeliveryConnection(conn, env, deliverDiscard), {
    // One process takes every request qmgr sends at once (default_process_limit
    // of them): a busy report would only make the master start another.
    concurrency: agentConcurrency,
    init(d) {
      env = agentEnvFromConfig(d.config);
    },
  });
}
