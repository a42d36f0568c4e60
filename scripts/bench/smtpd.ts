// Benchmark: messages accepted per second by smtpd (with cleanup and
// trivial-rewrite behind it, files committed to incoming) at 1, 10 and 50
// concurrent clients, each run bounded in count and time, with the CPU time
// smtpd and cleanup used; the reference's smtpd beside it when a reference
// instance answers on 127.0.0.1:10025 (REFERENCE_SMTP_PORT to change). A
// reference instance without a queue manager paces each message at about
// one second per connection (its cleanup waits on the missing qmgr
// trigger), so its figure measures that pacing unless qmgr runs.

import { smtpLoad } from "../smtp_load.ts";
import { start, stop } from "../../tests/daemons/smtpd/helpers.ts";

/** User+system CPU seconds of a process from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function referenceAnswers(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(512);
    const n = await Promise.race([
      c.read(buf),
      new Promise<null>((r) => setTimeout(() => r(null), 1000)),
    ]);
    c.close();
    return n !== null && new TextDecoder().decode(buf.subarray(0, n ?? 0)).startsWith("220");
  } catch {
    return false;
  }
}

/** Runs the benchmark and prints the figures. */
export async function bench(): Promise<void> {
  const inst = await start("smtpd_client_connection_count_limit = 0\n");
  const refPort = Number(Deno.env.get("REFERENCE_SMTP_PORT") ?? "10025");
  const haveRef = await referenceAnswers(refPort);
  try {
    const [cleanup, smtpd] = [inst.children[1], inst.children[2]];
    for (const clients of [1, 10, 50]) {
      const messages = clients === 1 ? 300 : 1500;
      const cpu0 = [cpuSeconds(smtpd.pid), cpuSeconds(cleanup.pid)];
      const r = await smtpLoad({
        port: inst.port,
        clients,
        messages,
        seconds: 20,
        recipient: "u@mx.example.com",
      });
      const cpu = [cpuSeconds(smtpd.pid) - cpu0[0], cpuSeconds(cleanup.pid) - cpu0[1]];
      let line = `smtpd, ${clients} client(s): ${(r.accepted / r.seconds).toFixed(0)} msg/s ` +
        `(${r.accepted} in ${r.seconds.toFixed(1)} s, ${r.rejected} refused); CPU smtpd ${
          cpu[0].toFixed(2)
        } s, ` +
        `cleanup ${cpu[1].toFixed(2)} s`;
      if (haveRef) {
        const ref = await smtpLoad({
          port: refPort,
          clients,
          messages,
          seconds: 20,
          recipient: "u@localhost",
        });
        line += `; reference ${(ref.accepted / ref.seconds).toFixed(0)} msg/s (${ref.accepted} in ${
          ref.seconds.toFixed(1)
        } s)`;
      }
      console.log(line);
    }
  } finally {
    await stop(inst);
  }
}

if (import.meta.main) await bench();
