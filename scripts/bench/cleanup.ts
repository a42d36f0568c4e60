// Benchmark: messages per second through the cleanup core, in process (no
// sockets, no files): a small message and a 100 KB one, with default
// settings and with header/body checks. The reference's cleanup has no
// in-process mode, so no reference figure is printed beside these.

import { configFromText } from "../../lib/config/mod.ts";
import { encodeRecord } from "../../lib/queue/record.ts";
import { type InputRecord, processMessage } from "../../daemons/cleanup/core.ts";
import { defaultFlags, settingsFrom } from "../../daemons/cleanup/settings.ts";
import type { CleanupTables } from "../../daemons/cleanup/tables.ts";

const enc = new TextEncoder();

function records(bodyBytes: number): InputRecord[] {
  const r = (type: string, data = "") => ({ type, data: enc.encode(data) });
  const out = [
    r("T", "1795533859 0"),
    r("A", "rewrite_context=local"),
    r("F", "Alice"),
    r("S", "alice"),
    r("R", "bob@example.com"),
    r("R", "carol"),
    r("M"),
    r("N", "From: Alice <alice>"),
    r("N", "To: bob@example.com, Carol <carol>"),
    r("N", "Subject: benchmark"),
    r("N", ""),
  ];
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  for (let n = 0; n < bodyBytes; n += line.length + 1) out.push(r("N", line));
  out.push(r("X"), r("E"));
  return out;
}

async function measure(label: string, input: InputRecord[], tables: CleanupTables) {
  const config = configFromText("/nonexistent", "myhostname = bench.example.com\n");
  const settings = settingsFrom(config);
  const log = { info: () => {}, warn: () => {} };
  const bytes = input.reduce((n, r) => n + encodeRecord(r.type, r.data).length, 0);
  const once = () =>
    processMessage(input, { queueId: "BENCH1", flags: defaultFlags, settings, tables, log });
  for (let i = 0; i < 20; i++) await once();
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < 1500) {
    await once();
    count++;
  }
  const secs = (performance.now() - start) / 1000;
  const rate = count / secs;
  console.log(
    `cleanup core, ${label}: ${rate.toFixed(0)} msg/s, ${(rate * bytes / 1e6).toFixed(1)} MB/s ` +
      `(${bytes} bytes per message)`,
  );
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const checks: CleanupTables = {
    headerChecks: (l) => Promise.resolve(/^Subject: viagra/i.test(l) ? "REJECT" : undefined),
    bodyChecks: (l) => Promise.resolve(/casino/.test(l) ? "REJECT" : undefined),
  };
  await measure("small message", records(200), {});
  await measure("100 KB message", records(100 * 1024), {});
  await measure("small message, header+body checks", records(200), checks);
  await measure("100 KB message, header+body checks", records(100 * 1024), checks);
}

if (import.meta.main) await bench();
