// Benchmark: the stub resolver's queries per second against the local test
// DNS server (UDP), one at a time and 50 at a time; the codec's encode and
// decode rate for a typical MX answer; and, for comparison, Deno.resolveDns
// asking the same server. The reference Postfix has no stand-alone resolver
// to time, so the Deno figure stands beside ours.

import { Resolver } from "../../lib/dns/mod.ts";
import {
  CLASS_IN,
  decodeMessage,
  defaultFlags,
  encodeMessage,
  type Message,
  TYPE,
} from "../../lib/dns/message.ts";
import { TestDnsServer } from "../../tests/lib/dns/server.ts";

/** Runs `n` calls of `fn`, `parallel` at a time; returns calls per second. */
async function rate(n: number, parallel: number, fn: (i: number) => Promise<unknown>) {
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return n / ((performance.now() - start) / 1000);
}

function codecRate(): { encode: number; decode: number } {
  const msg: Message = {
    id: 1,
    flags: defaultFlags({ qr: true, rd: true, ra: true }),
    questions: [{ name: "example.com", type: TYPE.MX, class: CLASS_IN }],
    answers: [1, 2, 3].map((i) => ({
      name: "example.com",
      type: TYPE.MX,
      class: CLASS_IN,
      ttl: 300,
      value: `mx${i}.example.com`,
      preference: i * 10,
    })),
    authority: [],
    additional: [],
  };
  const n = 100_000;
  let start = performance.now();
  let wire: Uint8Array = new Uint8Array();
  for (let i = 0; i < n; i++) wire = encodeMessage(msg);
  const encode = n / ((performance.now() - start) / 1000);
  start = performance.now();
  for (let i = 0; i < n; i++) decodeMessage(wire);
  const decode = n / ((performance.now() - start) / 1000);
  return { encode, decode };
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const dns = await TestDnsServer.start([
    { name: "example.com", type: "MX", value: "mx1.example.com", preference: 10 },
    { name: "mx1.example.com", type: "A", value: "192.0.2.1" },
  ]);
  try {
    const r = new Resolver({ servers: [dns.spec], timeoutMs: 2000, attempts: 1 });
    await rate(200, 1, () => r.query("example.com", "MX"));
    const serial = await rate(3000, 1, () => r.query("example.com", "MX"));
    const parallel = await rate(10000, 50, () => r.query("mx1.example.com", "A"));
    const opts = { nameServer: { ipAddr: "127.0.0.1", port: dns.port } };
    await rate(200, 1, () => Deno.resolveDns("example.com", "MX", opts));
    const denoSerial = await rate(3000, 1, () => Deno.resolveDns("example.com", "MX", opts));
    const denoParallel = await rate(
      10000,
      50,
      () => Deno.resolveDns("mx1.example.com", "A", opts),
    );
    const codec = codecRate();
    const f = (x: number) => Math.round(x).toLocaleString("en-US");
    console.log(
      `resolver, one at a time:  ${f(serial)} queries/s (Deno.resolveDns: ${f(denoSerial)})`,
    );
    console.log(
      `resolver, 50 at a time:   ${f(parallel)} queries/s (Deno.resolveDns: ${f(denoParallel)})`,
    );
    console.log(`codec: ${f(codec.encode)} MX answers encoded/s, ${f(codec.decode)} decoded/s`);
  } finally {
    await dns.close();
  }
}

if (import.meta.main) await bench();
