// A temporary Posthorn instance for master tests: main.cf and master.cf in a
// fresh folder, the test launcher as posthorn_launcher, helpers to run
// `postfix`, talk to services with a timeout, and find the master's children.
// As root the instance's mail_owner is a dedicated user created with useradd.

import * as net from "node:net";
import { projectRoot } from "../../run.ts";

const launcher = `${projectRoot}tests/fixtures/daemons/launch.ts`;
const denoFlags = ["run", "-A", "--unstable-ffi", "--unstable-net"];

/** The user root-mode tests run daemons as. */
export const testUser = "posthorn-test";

/** Creates the test user when running as root (once); returns its name, or "" when not root. */
export function ensureTestUser(): string {
  if (Deno.uid() !== 0) return "";
  const exists = () =>
    new Deno.Command("id", { args: ["-u", testUser], stdout: "null", stderr: "null" })
      .outputSync().success;
  // Test files run in parallel: a concurrent useradd may hold the passwd lock.
  for (let i = 0; i < 20 && !exists(); i++) {
    new Deno.Command("useradd", {
      args: ["-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", testUser],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (!exists()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  return testUser;
}

/** A free TCP port below the ephemeral range. */
export function freePort(): number {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port });
      l.close();
      return port;
    } catch {
      // Taken: try another.
    }
  }
}

/** One temporary instance. */
export class Instance {
  readonly dir: string;
  readonly queue: string;
  readonly log: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.queue = `${dir}/queue`;
    this.log = `${dir}/maillog`;
  }

  /** Creates the folder with main.cf (extra lines appended) and master.cf. */
  static async create(masterCf: string, mainCfExtra = ""): Promise<Instance> {
    const dir = await Deno.makeTempDir({ prefix: "posthorn-master-" });
    // Daemons running as mail_owner must read the configuration.
    await Deno.chmod(dir, 0o755);
    const inst = new Instance(dir);
    const user = ensureTestUser();
    const main = [
      `queue_directory = ${inst.queue}`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${inst.log}`,
      `inet_interfaces = 127.0.0.1`,
      `inet_protocols = ipv4`,
      `posthorn_launcher = ${Deno.execPath()} ${denoFlags.join(" ")} ${launcher}`,
      `service_throttle_time = 2`,
      ...(user ? [`mail_owner = ${user}`] : []),
      mainCfExtra,
    ].join("\n");
    await Deno.writeTextFile(`${dir}/main.cf`, main + "\n");
    await Deno.writeTextFile(`${dir}/master.cf`, masterCf);
    return inst;
  }

  /** Runs `postfix -c DIR ARGS` through the test launcher. */
  async postfix(...args: string[]): Promise<{ code: number; stderr: string }> {
    return await this.program("postfix", ["-c", this.dir, ...args]);
  }

  /** Runs a program of the launcher (master, postfix, ...) and collects stderr. */
  async program(name: string, args: string[]): Promise<{ code: number; stderr: string }> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...denoFlags, launcher, name, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(timer);
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  }

  /** The master's pid from pid/master.pid. */
  masterPid(): number {
    return parseInt(Deno.readTextFileSync(`${this.queue}/pid/master.pid`).trim(), 10);
  }

  /** The maillog so far ("" before the first line). */
  readLog(): string {
    try {
      return Deno.readTextFileSync(this.log);
    } catch {
      return "";
    }
  }

  /** Stops the instance if it runs, kills any leftover, removes the folder. */
  async destroy(): Promise<void> {
    let pid = 0;
    try {
      pid = this.masterPid();
    } catch {
      // Never started.
    }
    if (pid && alive(pid)) await this.postfix("stop");
    for (const p of pid ? descendants(pid) : []) tryKill(p);
    if (pid) tryKill(pid);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

function tryKill(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Gone.
  }
}

/** Whether a process exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** The live children of `pid`, by scanning /proc. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid && fields[0] !== "Z") out.push(Number(entry.name));
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** The children of the master running the service `name` (from their command line). */
export function serviceProcs(masterPid: number, name: string): number[] {
  return descendants(masterPid).filter((pid) => {
    try {
      const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      const at = argv.indexOf("-n");
      return at > 0 && argv[at + 1] === name;
    } catch {
      return false;
    }
  });
}

/** The real uid of a process. */
export function procUid(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

/** Polls `check` every 50 ms until it is truthy or `ms` pass; returns its last value. */
export async function waitFor<T>(check: () => T, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = check();
  while (!value && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = check();
  }
  return value;
}

/** Sends one line to a stream service and returns the first reply line (timeout: ""). */
export function ask(
  where: { path: string } | { port: number },
  line: string,
  ms = 10_000,
): Promise<string> {
  return new Promise((resolve) => {
    const opts = "path" in where ? { path: where.path } : { host: "127.0.0.1", port: where.port };
    const socket = net.connect(opts, () => socket.write(line + "\n"));
    let buffer = "";
    const done = (text: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(() => done(""), ms);
    socket.on("data", (chunk) => {
      buffer += chunk.toString();
      const nl = buffer.indexOf("\n");
      if (nl >= 0) done(buffer.slice(0, nl));
    });
    socket.on("error", () => done(""));
    socket.on("close", () => done(buffer));
  });
}
