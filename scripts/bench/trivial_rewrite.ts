// Benchmark: trivial-rewrite resolve requests per second, in process (the
// resolver alone) and through the service socket: with the client library
// (one connection, one request in flight, as every daemon uses it) and with
// requests pipelined on one raw connection (what the server itself can
// take). Where the reference Postfix is installed and this runs as root, the
// reference's own trivial-rewrite under its master is measured through the
// same client library on the same addresses.

import { configFromText } from "../../lib/config/mod.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { captureLog } from "../../lib/log.ts";
import { closeRewriteClients, resolveAddress } from "../../lib/rewrite_client.ts";
import { resolveAddress as resolveInProcess } from "../../daemons/trivial_rewrite/resolve.ts";
import { settingsFrom } from "../../daemons/trivial_rewrite/settings.ts";
import { startService } from "../../tests/daemons/trivial_rewrite/instance.ts";
import {
  canRunReferenceInstance,
  startReferenceInstance,
} from "../../tests/daemons/trivial_rewrite/reference.ts";

const MAIN_CF = [
  "compatibility_level = 3.6",
  "myhostname = mail.example.com",
  "mydomain = example.com",
  "inet_interfaces = loopback-only",
  "relay_domains = relay.example",
  "virtual_mailbox_domains = mbox.example",
  "",
].join("\n");

/** A mix of local, relay, virtual, remote and routed recipients, all distinct (no cache hits). */
function address(i: number): string {
  const domains = ["mail.example.com", "relay.example", "mbox.example", `d${i % 97}.example.org`];
  return i % 11 === 0 ? `u${i}%x.example@mail.example.com` : `u${i}@${domains[i % 4]}`;
}

async function rate(label: string, run: (n: number) => Promise<void>, seconds = 1.5) {
  await run(200);
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await run(500);
    count += 500;
  }
  const perSec = count / ((performance.now() - start) / 1000);
  console.log(`${label}: ${perSec.toFixed(0)} resolve/s`);
  return perSec;
}

/** Through the client library: distinct addresses, so every call reaches the service. */
function viaClient(config: ReturnType<typeof configFromText>) {
  let next = 0;
  return async (n: number) => {
    for (let i = 0; i < n; i++) await resolveAddress(config, "", address(next++));
  };
}

/** Pipelined on one raw connection: write `n` requests, read `n` replies. */
async function pipelined(socket: string) {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const reader = new AttrReader();
  const buf = new Uint8Array(1 << 16);
  let next = 0;
  let pending = -1; // the greeting
  const drain = async () => {
    while (pending > 0 || pending === -1) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("service hung up");
      const lists = reader.push(buf.subarray(0, n)).length;
      pending = pending === -1 ? lists - 1 : pending - lists;
    }
  };
  await drain();
  return {
    run: async (n: number) => {
      const parts = Array.from(
        { length: n },
        () => encodeAttrs({ request: "resolve", sender: "", address: address(next++) }),
      );
      const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) all.set(p, (at += p.length) - p.length);
      pending = n;
      const writing = (async () => {
        for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
      })();
      await drain();
      await writing;
    },
    close: () => conn.close(),
  };
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  captureLog(() => {});
  const dir = await Deno.makeTempDir({ prefix: "tr-bench-" });
  try {
    const settings = await settingsFrom(configFromText(dir, MAIN_CF));
    let next = 0;
    await rate("in process (resolver only)", async (n) => {
      for (let i = 0; i < n; i++) await resolveInProcess(settings, false, "", address(next++));
    });

    const svc = await startService(MAIN_CF, {}, dir);
    try {
      const ours = await rate(
        "posthorn service, client library (sequential)",
        viaClient(svc.config),
      );
      closeRewriteClients();
      const raw = await pipelined(svc.socket);
      await rate("posthorn service, one connection, pipelined", raw.run);
      raw.close();
      if (canRunReferenceInstance()) {
        const ref = await startReferenceInstance(MAIN_CF);
        try {
          const config = configFromText(ref.dir, `queue_directory = ${ref.dir}/queue\n`);
          const theirs = await rate(
            "reference service, client library (sequential)",
            viaClient(config),
          );
          console.log(`posthorn / reference (sequential): ${(ours / theirs).toFixed(2)}`);
        } finally {
          closeRewriteClients();
          await ref.stop();
        }
      } else {
        console.log("reference: not measured (needs root and the reference Postfix)");
      }
    } finally {
      await svc.stop();
    }
  } finally {
    captureLog(undefined);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
