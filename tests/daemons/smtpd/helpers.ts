// Shared set-up for the smtpd tests: an instance folder with cleanup and
// smtpd running as daemons (smtpd on a TCP port), and a small SMTP client
// that sends lines and reads replies.

import { projectRoot } from "../../run.ts";
import { createQueueTree, type QueueLayout } from "../../../lib/queue/layout.ts";

/** A running test instance. */
export interface Instance {
  dir: string;
  port: number;
  layout: QueueLayout;
  children: Deno.ChildProcess[];
}

async function waitFor(
  check: () => Promise<boolean> | boolean,
  what: string,
  ms = 15000,
): Promise<void> {
  for (let t = 0; t < ms; t += 25) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not come up`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on the loopback address. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function spawn(inst: Instance, module: string, program: string, args: string[]): void {
  const script = `${inst.dir}/${program}.ts`;
  Deno.writeTextFileSync(
    script,
    `import { main } from "${projectRoot}${module}";\n` +
      `Deno.exit(await main(Deno.args, { name: "${program}", program: "${program}" }));\n`,
  );
  inst.children.push(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-ffi", "--unstable-net", script, ...args],
      env: { MAIL_CONFIG: inst.dir },
      stdout: "null",
      stderr: "null",
    }).spawn(),
  );
}

/** The main.cf every test starts from. */
export const baseCf = `myhostname = mx.example.com
mydomain = example.com
myorigin = $mydomain
mydestination = $myhostname, localhost
mynetworks = 10.0.0.0/8
inet_interfaces = 127.0.0.1
mail_name = Postfix
smtpd_banner = $myhostname ESMTP $mail_name
hash_queue_names =
compatibility_level = 3.6
local_recipient_maps =
smtpd_error_sleep_time = 0
smtpd_client_connection_count_limit = 0
`;

/** Starts cleanup and smtpd on a fresh instance; `extra` is added to main.cf. */
export async function start(
  extra = "",
  options: { cleanup?: boolean; anvil?: boolean } = {},
): Promise<Instance> {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  Deno.writeTextFileSync(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nmaillog_file = ${dir}/maillog\n` + baseCf +
      extra.replaceAll("DIR", dir) +
      "\n",
  );
  const port = freePort();
  const inst: Instance = { dir, port, layout, children: [] };
  if (options.cleanup !== false) {
    spawn(inst, "daemons/trivial_rewrite/mod.ts", "trivial-rewrite", [
      "-n",
      "rewrite",
      "-L",
      `unix:${dir}/queue/private/rewrite`,
    ]);
    spawn(inst, "daemons/cleanup/mod.ts", "cleanup", ["-L", `unix:${dir}/queue/private/cleanup`]);
  }
  if (options.anvil) {
    spawn(inst, "daemons/anvil.ts", "anvil", ["-L", `unix:${dir}/queue/private/anvil`]);
    await waitFor(() => exists(`${dir}/queue/private/anvil`), "anvil");
  }
  spawn(inst, "daemons/smtpd/mod.ts", "smtpd", ["-n", "smtp", "-L", `inet:127.0.0.1:${port}`]);
  if (options.cleanup !== false) {
    await waitFor(() => exists(`${dir}/queue/private/cleanup`), "cleanup");
    // smtpd asks trivial-rewrite from the first RCPT on.
    await waitFor(() => exists(`${dir}/queue/private/rewrite`), "trivial-rewrite");
  }
  await waitFor(() => portOpen(port), "smtpd");
  return inst;
}

/** Stops the daemons and removes the folder. */
export async function stop(inst: Instance): Promise<void> {
  for (const c of inst.children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await c.status;
  }
  await Deno.remove(inst.dir, { recursive: true });
}

/** The instance's log lines (program prefix and all). */
export function maillog(inst: Instance): string {
  try {
    return Deno.readTextFileSync(`${inst.dir}/maillog`);
  } catch {
    return "";
  }
}

/** Waits until the log holds `text`. */
export async function logHas(inst: Instance, text: string | RegExp, ms = 5000): Promise<string> {
  for (let t = 0; t < ms; t += 25) {
    const log = maillog(inst);
    if (typeof text === "string" ? log.includes(text) : text.test(log)) return log;
    await new Promise((r) => setTimeout(r, 25));
  }
  return maillog(inst);
}

/** Queue files in incoming. */
export function incoming(inst: Instance): string[] {
  try {
    return [...Deno.readDirSync(`${inst.layout.queueDirectory}/incoming`)].map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A minimal SMTP client: raw writes, reply reads. */
export class Client {
  private buf = "";
  closed = false;

  private constructor(readonly conn: Deno.TcpConn) {}

  static async connect(port: number): Promise<Client> {
    return new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends raw text or bytes. */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** Reads one complete reply (all its lines joined by "\n"); "<EOF>" at end of input. */
  async reply(): Promise<string> {
    const lines: string[] = [];
    for (;;) {
      const nl = this.buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        lines.push(line);
        if (line.length < 4 || line[3] !== "-") return lines.join("\n");
        continue;
      }
      const chunk = new Uint8Array(65536);
      let n: number | null;
      try {
        n = await this.conn.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) {
        this.closed = true;
        return lines.length ? lines.join("\n") : "<EOF>";
      }
      this.buf += dec.decode(chunk.subarray(0, n));
    }
  }

  /** Sends a command line and returns its reply. */
  async cmd(line: string): Promise<string> {
    await this.send(line + "\r\n");
    return await this.reply();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed.
    }
  }
}

/** Runs a list of commands after the greeting and returns [greeting, ...replies]. */
export async function session(port: number, lines: string[]): Promise<string[]> {
  const c = await Client.connect(port);
  const out = [await c.reply()];
  for (const l of lines) out.push(await c.cmd(l));
  c.close();
  return out;
}
