// proxymap: the lookup table proxy server, as Postfix's proxymap(8).
//
// Serves proxy:type:name tables to every program over its socket: lookups
// (and sequence) as the proxymap service, limited to proxy_read_maps;
// updates and deletions too as the proxywrite service, limited to
// proxy_write_maps. Each table is opened once and shared by the clients;
// a client keeps its connection and sends one request after another.

import type * as net from "node:net";
import { type DaemonContext, multiServer } from "../../lib/daemon/server.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { fatal } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import { PROXYMAP_PROTOCOL } from "../../maps/proxy.ts";
import { ProxyService, type SeqState } from "./service.ts";

/** Serves one client: the protocol announcement, then its requests in order. */
export function serveProxy(conn: net.Socket, service: ProxyService): Promise<void> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    const sequences = new Map<string, SeqState>();
    let queue: Promise<void> = Promise.resolve();
    conn.write(encodeAttrs({ protocol: PROXYMAP_PROTOCOL }));
    conn.on("data", (chunk: Uint8Array) => {
      for (const request of reader.push(chunk)) {
        queue = queue.then(async () => {
          const reply = await service.handle(request, sequences);
          if (!conn.destroyed) conn.write(encodeAttrs(reply));
        });
      }
    });
    const done = () => queue.finally(() => resolve());
    conn.on("close", done);
    conn.on("error", done);
  });
}

/** Runs proxymap (or proxywrite) under the daemon runtime, many clients per process. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let service: ProxyService | undefined;
  return multiServer(args, ctx, (conn) => serveProxy(conn, service!), {
    // Clients (smtpd, cleanup) keep their connection for their whole life.
    requestTimeout: 20 * 86400,
    init(d: DaemonContext) {
      const read = d.config.get("proxymap_service_name") || "proxymap";
      const write = d.config.get("proxywrite_service_name") || "proxywrite";
      if (d.service !== read && d.service !== write) {
        fatal(`service name must be one of ${read} or ${write}`);
      }
      service = new ProxyService(d.config, d.service === write);
    },
  });
}
