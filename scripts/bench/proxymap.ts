// Benchmark: table lookups per second, direct and through proxymap. The
// same texthash table (10,000 entries, distinct keys, no cache) is read by
// openMap in process, through a Posthorn proxymap process (one connection,
// one request in flight, as every client uses it), and, where the reference
// Postfix is installed and this runs as root, through the reference's
// proxymap under its master with the same client (the protocols agree).

import { configFromText } from "../../lib/config/mod.ts";
import { openMap } from "../../maps/mod.ts";
import { closeProxyStreams } from "../../maps/proxy.ts";

const ENTRIES = 10_000;
const root = new URL("../../", import.meta.url).pathname;

async function rate(label: string, lookup: (key: string) => Promise<unknown>, seconds = 1.5) {
  for (let i = 0; i < 200; i++) await lookup(`user${i}@example.com`);
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 500; i++) await lookup(`user${(count + i) % ENTRIES}@example.com`);
    count += 500;
  }
  const perSec = count / ((performance.now() - start) / 1000);
  console.log(`${label}: ${perSec.toFixed(0)} lookups/s`);
}

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`no socket ${path}`);
}

/** A temporary folder with main.cf and the table; `dir` is readable by the reference's user. */
async function setup(prefix: string) {
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.chmod(dir, 0o755);
  for (const sub of ["queue/private", "queue/public", "queue/pid", "data"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  const lines: string[] = [];
  for (let i = 0; i < ENTRIES; i++) lines.push(`user${i}@example.com OK ${i}`);
  await Deno.writeTextFile(`${dir}/table`, lines.join("\n") + "\n");
  const mainCf = `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\n` +
    `compatibility_level = 3.6\nsyslog_name = postfix-pmbench\n` +
    `proxy_read_maps = proxy:texthash:${dir}/table\n`;
  await Deno.writeTextFile(`${dir}/main.cf`, mainCf);
  return { dir, config: configFromText(dir, mainCf) };
}

async function posthornProxymap(): Promise<void> {
  const { dir, config } = await setup("pm-bench-");
  const socket = `${dir}/queue/private/proxymap`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-ffi",
      "--unstable-net",
      `${root}mod.ts`,
      "proxymap",
      "-L",
      `unix:${socket}`,
    ],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForSocket(socket);
    const direct = openMap(`texthash:${dir}/table`);
    await rate("direct texthash (in process)", (k) => direct.lookup(k));
    const proxied = openMap(`proxy:texthash:${dir}/table`, { config });
    await rate("proxy:texthash via Posthorn proxymap", (k) => proxied.lookup(k));
  } finally {
    closeProxyStreams();
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

async function referenceProxymap(): Promise<void> {
  const master = "/usr/lib/postfix/sbin/master";
  try {
    if (Deno.uid() !== 0 || !Deno.statSync(master).isFile) return;
  } catch {
    return;
  }
  const { dir, config } = await setup("pm-bench-ref-");
  await Deno.writeTextFile(`${dir}/master.cf`, "proxymap unix - - n - - proxymap\n");
  const owned = ["data", "queue/private", "queue/public"].map((d) => `${dir}/${d}`);
  await new Deno.Command("chown", { args: ["postfix", ...owned] }).output();
  const started = await new Deno.Command(master, {
    args: ["-w"],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "null",
  }).output();
  try {
    if (!started.success) return;
    await waitForSocket(`${dir}/queue/private/proxymap`);
    const proxied = openMap(`proxy:texthash:${dir}/table`, { config });
    await rate("proxy:texthash via the reference proxymap (same client)", (k) => proxied.lookup(k));
  } finally {
    closeProxyStreams();
    try {
      const pid = parseInt(Deno.readTextFileSync(`${dir}/queue/pid/master.pid`).trim(), 10);
      if (pid > 0) Deno.kill(pid, "SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
    } catch {
      // Not started.
    }
    await Deno.remove(dir, { recursive: true });
  }
}

/** Prints the three figures. */
export async function bench(): Promise<void> {
  await posthornProxymap();
  await referenceProxymap();
}

if (import.meta.main) await bench();
