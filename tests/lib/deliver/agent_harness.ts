// A delivery agent served in-process on a unix socket, for protocol tests:
// the qmgr side talks to it with sendDeliverRequest as it would to a real
// agent under the master.

import * as net from "node:net";
import {
  type AgentEnv,
  type Deliverer,
  handleDeliveryConnection,
} from "../../../lib/deliver/agent.ts";

/** A running in-process agent. */
export interface TestAgentServer {
  path: string;
  close(): Promise<void>;
}

/** Serves `deliver` on a fresh socket under `dir`. */
export async function serveAgent(
  dir: string,
  env: AgentEnv,
  deliver: Deliverer,
): Promise<TestAgentServer> {
  const path = `${dir}/agent.sock`;
  const server = net.createServer((conn) => {
    handleDeliveryConnection(conn, env, deliver).finally(() => conn.end());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
