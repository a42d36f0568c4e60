// anvil: the connection count and rate limiter, as Postfix's anvil(8).
//
// Keeps, per client identity (`service:address`), the number of open
// connections and the connection, message and recipient rates within
// anvil_rate_time_unit, and answers each event with the counter it
// touched. smtpd asks it through lib/anvil_client.ts; the limits themselves
// are smtpd's parameters. Logs the peak figures every anvil_status_update_time.

import type * as net from "node:net";
import { eventServer } from "../lib/daemon/server.ts";
import { AttrReader, encodeAttrs } from "../lib/ipc/attr.ts";
import { info } from "../lib/log.ts";
import type { ProgramContext } from "../lib/program.ts";

/** Counters for one client identity. */
interface Entry {
  count: number;
  windowStart: number;
  connections: number;
  messages: number;
  recipients: number;
}

/** The anvil state: identities and their counters. */
export class AnvilState {
  private entries = new Map<string, Entry>();
  private peakCount = { value: 0, ident: "" };
  private peakRate = { value: 0, ident: "" };

  constructor(private readonly windowMs: number, private readonly now = () => Date.now()) {}

  private entry(ident: string): Entry {
    let e = this.entries.get(ident);
    const t = this.now();
    if (!e) {
      e = { count: 0, windowStart: t, connections: 0, messages: 0, recipients: 0 };
      this.entries.set(ident, e);
    } else if (t - e.windowStart >= this.windowMs) {
      e.windowStart = t;
      e.connections = e.messages = e.recipients = 0;
    }
    return e;
  }

  /** Handles one request; returns the reply attributes. */
  handle(request: string, ident: string): Record<string, string | number> {
    if (!ident) return { status: -1 };
    const e = this.entry(ident);
    switch (request) {
      case "connect":
        e.count++;
        e.connections++;
        if (e.count > this.peakCount.value) this.peakCount = { value: e.count, ident };
        if (e.connections > this.peakRate.value) this.peakRate = { value: e.connections, ident };
        return { status: 0, count: e.count, rate: e.connections };
      case "disconnect":
        if (e.count > 0) e.count--;
        if (e.count === 0 && e.connections === 0 && e.messages === 0 && e.recipients === 0) {
          this.entries.delete(ident);
        }
        return { status: 0 };
      case "message":
        e.messages++;
        return { status: 0, rate: e.messages };
      case "recipient":
        e.recipients++;
        return { status: 0, rate: e.recipients };
      case "lookup":
        return {
          status: 0,
          count: e.count,
          rate: e.connections,
          message_rate: e.messages,
          recipient_rate: e.recipients,
        };
    }
    return { status: -1 };
  }

  /** The statistics line anvil logs. */
  statistics(): string[] {
    return [
      `statistics: max connection rate ${this.peakRate.value}/${
        this.windowMs / 1000
      }s for (${this.peakRate.ident})`,
      `statistics: max connection count ${this.peakCount.value} for (${this.peakCount.ident})`,
    ];
  }
}

/** Serves one client connection: requests until it closes. */
function serveAnvil(conn: net.Socket, state: AnvilState): Promise<void> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    conn.on("data", (b: Uint8Array) => {
      let lists;
      try {
        lists = reader.push(b);
      } catch {
        conn.destroy();
        return;
      }
      for (const l of lists) {
        conn.write(encodeAttrs(state.handle(l.get("request") ?? "", l.get("ident") ?? "")));
      }
    });
    conn.on("close", () => resolve());
    conn.on("error", () => resolve());
  });
}

/** Runs anvil under the daemon runtime (one process, every client at once). */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let state: AnvilState | undefined;
  return eventServer(args, ctx, (conn) => serveAnvil(conn, state!), {
    ignoreMaxUse: true,
    // A client (smtpd) keeps its connection for its whole life; setTimeout caps at 2^31 ms.
    requestTimeout: 20 * 86400,
    init(d) {
      state = new AnvilState(d.config.time("anvil_rate_time_unit") * 1000);
      const every = d.config.time("anvil_status_update_time") * 1000;
      const timer = setInterval(() => state!.statistics().forEach((l) => info(l)), every);
      Deno.unrefTimer(timer);
    },
  });
}
