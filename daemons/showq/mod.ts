// showq: the queue listing service, as Postfix's showq(8).
//
// Each client of public/showq (postqueue -p/-j, sendmail -bp) gets a report
// of every message in the maildrop, active, incoming, deferred and hold
// queues, streamed as it walks the queue in Postfix's showq protocol
// (lib/showq_client.ts), and the connection is closed at the end. With -S it
// runs stand-alone, writing one report to standard output: postqueue runs it
// so when the mail system is down.

import type * as net from "node:net";
import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, multiServer } from "../../lib/daemon/server.ts";
import { loadConfig, setupLogging } from "../../lib/config/mod.ts";
import { configureLog } from "../../lib/log.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { encodeQueuedMessage, showqEnd, showqGreeting } from "../../lib/showq_client.ts";
import { scanQueues } from "./scan.ts";

/** Bytes gathered before each write: one write per batch of messages, not per message. */
const batchBytes = 1 << 16;

/** Yields the report (greeting, messages, end) in batches. */
function* reportBatches(config: DaemonContext["config"]): Generator<Uint8Array> {
  let parts: Uint8Array[] = [showqGreeting()];
  let size = parts[0].length;
  const show = { utf8: config.bool("smtputf8_enable") };
  for (const msg of scanQueues(layoutFromConfig(config), show)) {
    const bytes = encodeQueuedMessage(msg);
    parts.push(bytes);
    size += bytes.length;
    if (size >= batchBytes) {
      yield join(parts, size);
      parts = [];
      size = 0;
    }
  }
  parts.push(showqEnd());
  yield join(parts, size + 1);
}

function join(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes the report to a client, waiting for the socket to drain between batches. */
async function serveReport(conn: net.Socket, ctx: DaemonContext): Promise<void> {
  // A client that goes away early (mailq | head) ends its report, not the service.
  let gone = false;
  conn.on("error", () => gone = true);
  conn.on("close", () => gone = true);
  for (const batch of reportBatches(ctx.config)) {
    if (gone || conn.destroyed) return;
    if (!conn.write(batch)) {
      await new Promise<void>((resolve) => {
        conn.once("drain", resolve);
        conn.once("close", resolve);
      });
    }
  }
  if (gone || conn.destroyed) return;
  await new Promise<void>((resolve) => {
    conn.once("close", resolve);
    conn.end(resolve);
  });
}

/** Stand-alone mode (-S): one report to standard output. */
async function standalone(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  const config = loadConfig({ program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose: args.filter((a) => a === "-v").length });
  try {
    for (const batch of reportBatches(config)) {
      let at = 0;
      while (at < batch.length) at += await Deno.stdout.write(batch.subarray(at));
    }
  } catch (err) {
    // postqueue stopped reading (its own reader went away): nothing to report.
    if (err instanceof Deno.errors.BrokenPipe) return 0;
    throw err;
  }
  return 0;
}

/** Runs showq under the daemon runtime, or stand-alone with -S. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  if (args.includes("-S")) return standalone(args, ctx);
  return multiServer(args, ctx, serveReport);
}
