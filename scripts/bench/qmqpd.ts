// Benchmark: messages queued per second through qmqpd (one message per
// connection, cleanup and trivial-rewrite behind it, files committed to
// incoming) under the master, with 1 and 10 concurrent clients, each run
// bounded in count and time. With REFERENCE_QMQP_PORT naming a reference
// qmqpd on 127.0.0.1, its figure for the same work is printed beside (a
// reference instance without a queue manager paces each message at about
// one second: its cleanup waits on the missing qmgr trigger).

import { freePort, Instance } from "../../tests/daemons/master/instance.ts";
import { encodeNetstring } from "../../daemons/qmqpd/netstring.ts";

function packet(n: number): Uint8Array {
  const parts = [
    encodeNetstring(`Subject: bench ${n}\nFrom: a@example.org\n\n${"body line\n".repeat(20)}`),
    encodeNetstring("a@example.org"),
    encodeNetstring("u@mx.example.com"),
  ];
  const inner = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) inner.set(p, at), at += p.length;
  return encodeNetstring(inner);
}

/** One QMQP delivery; true when queued. */
async function deliver(port: number, data: Uint8Array): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(data);
    let text = "";
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (text.endsWith(",")) break;
    }
    return /^\d+:K/.test(text);
  } catch {
    return false;
  } finally {
    conn.close();
  }
}

/** Sends up to `messages` with `clients` connections at a time, for at most `seconds`. */
async function load(port: number, clients: number, messages: number, seconds: number) {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let next = 0;
  let queued = 0;
  let failed = 0;
  const worker = async () => {
    while (next < messages && performance.now() < deadline) {
      const n = next++;
      if (await deliver(port, packet(n))) queued++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  return { queued, failed, seconds: (performance.now() - t0) / 1000 };
}

/** Runs the benchmark and prints the figures. */
export async function bench(): Promise<void> {
  const port = freePort();
  const inst = await Instance.create(
    `127.0.0.1:${port} inet n - n - - qmqpd\n` +
      `cleanup unix n - n - 0 cleanup\n` +
      `rewrite unix - - n - - trivial-rewrite\n`,
    "myhostname = mx.example.com\nmydestination = $myhostname\nhash_queue_names =\n" +
      "qmqpd_authorized_clients = 127.0.0.1\nqmqpd_error_delay = 0\n",
  );
  const refPort = Number(Deno.env.get("REFERENCE_QMQP_PORT") ?? "0");
  try {
    const started = await inst.postfix("start");
    if (started.code !== 0) throw new Error(started.stderr);
    // Warm up: the master starts qmqpd, cleanup and trivial-rewrite on demand.
    await deliver(port, packet(0));
    for (const clients of [1, 10]) {
      const messages = clients === 1 ? 200 : 1000;
      const r = await load(port, clients, messages, 20);
      let line = `qmqpd, ${clients} client(s): ${(r.queued / r.seconds).toFixed(0)} msg/s ` +
        `(${r.queued} in ${r.seconds.toFixed(1)} s, ${r.failed} failed)`;
      if (refPort) {
        const ref = await load(refPort, clients, messages, 20);
        line += `; reference ${(ref.queued / ref.seconds).toFixed(1)} msg/s (${ref.queued} in ${
          ref.seconds.toFixed(1)
        } s)`;
      }
      console.log(line);
    }
  } finally {
    await inst.destroy();
  }
}

if (import.meta.main) await bench();
