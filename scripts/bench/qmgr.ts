// Benchmark: recipients scheduled per second by the queue manager's core,
// for messages with 1 and with 50 recipients: queue files in incoming,
// moved to active, read, resolved (an in-process resolver), grouped,
// delivered by an agent that accepts at once, and removed. Two agents: an
// in-process function (the scheduler and queue-file work alone), and the
// real delivery request protocol over a unix socket with the agent-side
// session (log line, D mark in the queue file per recipient). The
// reference's qmgr cannot run without its master and agents; no figure is
// printed beside these.

import * as net from "node:net";
import { configFromText } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { createQueueTree, queueFilePath, type QueueLayout } from "../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { handleDeliveryConnection } from "../../lib/deliver/agent.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import type { DeliverReply, DeliverRequest } from "../../lib/deliver/request.ts";
import { Qmgr } from "../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../daemons/qmgr/settings.ts";

const noBounce: BounceService = {
  append: () => Promise.resolve(true),
  notify: () => Promise.resolve(true),
};

function writeMessages(layout: QueueLayout, count: number, rcpts: number): void {
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i++) {
    const id = `B${(0x100000 + i).toString(16).toUpperCase()}`;
    const env = [encodeRecord("T", `${now} 0`), encodeRecord("S", "sender@example.org")];
    for (let r = 0; r < rcpts; r++) {
      env.push(encodeRecord("R", `user${r}@dest${(i + r) % 10}.example`));
    }
    const fields = [100, 0, rcpts, 0, 100, 0].map((n) => String(n).padStart(15, " ")).join(" ");
    const data = joinRecords([
      encodeRecord("C", fields),
      ...env,
      encodeRecord("M", ""),
      encodeRecord("N", "Subject: bench"),
      encodeRecord("N", ""),
      encodeRecord("N", "Hello."),
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]);
    Deno.writeFileSync(queueFilePath(layout, "incoming", id), data, { mode: 0o700 });
  }
}

type Deliver = (transport: string, req: DeliverRequest) => Promise<DeliverReply>;

/** Accepts every recipient at once, in process. */
const acceptAll: Deliver = (_t, req) =>
  Promise.resolve({
    status: 0,
    hopStatus: "",
    hopReason: "",
    traced: false,
    results: new Map(req.recipients.map((r) => [r.offset, "sent" as const])),
  });

async function run(count: number, rcpts: number, overSocket: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-qmgr-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  writeMessages(layout, count, rcpts);
  let deliver = acceptAll;
  let server: net.Server | undefined;
  if (overSocket) {
    const path = `${dir}/agent.sock`;
    const env = { layout, bounce: noBounce, resolution: 2 };
    server = net.createServer((conn) => {
      handleDeliveryConnection(conn, env, async (s) => {
        for (const r of s.request.recipients) {
          await s.sent(r, { dsn: "2.0.0", relay: "none", text: "accepted" });
        }
      }).finally(() => conn.end());
    });
    await new Promise<void>((resolve) => server!.listen(path, resolve));
    deliver = (_t, req) => sendDeliverRequest(path, req);
  }
  const config = configFromText(dir, `queue_directory = ${dir}/queue\n`);
  const qmgr = new Qmgr({
    layout,
    settings: qmgrSettings(config),
    resolve: (_s, address) =>
      Promise.resolve({
        transport: "smtp",
        nexthop: address.slice(address.indexOf("@") + 1),
        recipient: address,
        flags: 0,
      }),
    deliver,
    bounce: noBounce,
  });
  captureLog(() => {});
  const t0 = performance.now();
  await qmgr.start();
  await qmgr.idle();
  const seconds = (performance.now() - t0) / 1000;
  captureLog(undefined);
  qmgr.stop();
  server?.close();
  const total = count * rcpts;
  const how = overSocket ? "agent over a unix socket (protocol, D marks)" : "in-process agent";
  console.log(
    `qmgr: ${count} messages x ${rcpts} recipient(s), ${how}: ${total} recipients in ` +
      `${seconds.toFixed(2)} s = ${Math.round(total / seconds)} recipients/s, ` +
      `${Math.round(count / seconds)} messages/s (${qmgr.stats.requests} requests)`,
  );
  await Deno.remove(dir, { recursive: true });
}

/** Prints recipients per second for 1 and 50 recipients per message. */
export async function bench(): Promise<void> {
  await run(10_000, 1, false);
  await run(10_000, 50, false);
  await run(2_000, 1, true);
  await run(2_000, 50, true);
  console.log("qmgr: reference figure not measured (its qmgr needs a running master and agents)");
}

if (import.meta.main) await bench();
