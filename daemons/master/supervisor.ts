// The master's process management (Postfix's master_avail, master_spawn,
// master_status, master_wakeup): it watches each service's listening
// descriptors with a non-blocking FFI poll and starts a process when a client
// arrives and none is available, within the process limit; it reads the
// status pipe to know which processes are free; it reaps children, logs
// abnormal exits, throttles a service whose processes die before serving,
// and sends wake-up triggers on schedule.

import { type ChildProcess, spawn } from "node:child_process";
import { signalNumber } from "../../lib/signals.ts";
import process from "node:process";
import type { Config } from "../../lib/config/mod.ts";
import {
  closeFd,
  makePipe,
  pollAsync,
  type PollFd,
  POLLIN,
  readFd,
  writeFd,
} from "../../lib/ffi/libc.ts";
import { launchCommand, launcherWords } from "../../lib/daemon/launcher.ts";
import type { Credentials } from "../../lib/daemon/users.ts";
import { GENERATION_ENV, parseStatus, STANDBY_ENV } from "../../lib/daemon/protocol.ts";
import { sendTrigger, TRIGGER_WAKEUP } from "../../lib/ipc/trigger.ts";
import { debug, panicNoExit, warn } from "../../lib/log.ts";
import { childArgs, type Service, serviceLabel } from "./services.ts";

/** Who the children run as: mail_owner's ids as root, else undefined (this user). */
export type { Credentials };

/** One running child. */
interface Proc {
  pid: number;
  child: ChildProcess;
  avail: boolean;
  /** It reported taking a client: its death is not a startup failure. */
  used: boolean;
  generation: number;
  /** The master asked it to stop: its exit is not worth a warning. */
  stopping: boolean;
  /** A spare (protocol.ts): starting, or loaded and waiting for SIGUSR1. */
  standby?: "starting" | "ready";
}

/** A configured service with its sockets and processes. */
export class RunningService {
  procs = new Map<number, Proc>();
  avail = 0;
  /** How many spares to keep loaded once processes retire at max_use (protocol.ts). */
  spares = 1;
  throttled = false;
  stopped = false;
  private throttleTimer?: ReturnType<typeof setTimeout>;
  private wakeupTimer?: ReturnType<typeof setInterval>;
  private lastLimitWarning = 0;
  readonly statusRead: number;
  readonly statusWrite: number;

  constructor(public spec: Service, public fds: number[]) {
    [this.statusRead, this.statusWrite] = makePipe(true);
  }

  /** The path Postfix logs for the service's processes (daemon_directory/command). */
  path(config: Config): string {
    return launchCommand(config, this.spec.command, []).path;
  }

  /** Whether a spare of this service is still loading. */
  loadingSpare(): boolean {
    for (const proc of this.procs.values()) if (proc.standby === "starting") return true;
    return false;
  }

  /** Whether a client waiting on the sockets should make the master start a process. */
  wantsClients(): boolean {
    if (this.stopped || this.throttled || this.avail > 0) return false;
    return this.spec.maxProc === 0 || this.procs.size < this.spec.maxProc;
  }

  clearTimers(): void {
    clearTimeout(this.throttleTimer);
    clearInterval(this.wakeupTimer);
  }

  /** Stops listening for service_throttle_time seconds (Postfix's master_throttle). */
  throttle(seconds: number, onEnd: () => void): void {
    this.throttled = true;
    clearTimeout(this.throttleTimer);
    this.throttleTimer = setTimeout(() => {
      this.throttled = false;
      onEnd();
    }, seconds * 1000);
  }

  /** Postfix's process-limit warning, at most once a minute per service. */
  warnLimit(): void {
    const now = Date.now();
    if (now - this.lastLimitWarning < 60_000) return;
    this.lastLimitWarning = now;
    const s = this.spec;
    const label = serviceLabel(s);
    warn(
      `service "${s.name}" (${label}) has reached its process limit ` +
        `"${s.maxProc}": new clients may experience noticeable delays`,
    );
    warn(
      "to avoid this condition, increase the process count in master.cf " +
        "or reduce the service time per client",
    );
  }

  setWakeup(timer: ReturnType<typeof setInterval> | undefined): void {
    clearInterval(this.wakeupTimer);
    this.wakeupTimer = timer;
  }
}

/** Runs the poll loop and the children of every service. */
export class Supervisor {
  services: RunningService[] = [];
  private generation = 1;
  private wake: [number, number];
  private lifeline: [number, number];
  private running = true;
  private loopDone?: Promise<void>;

  constructor(
    public config: Config,
    public credentials: Credentials | undefined,
    public verbose: number,
    private readonly stdio: "inherit" | "ignore",
  ) {
    this.wake = makePipe(true);
    // Children hold the read end; only the master holds the write end, so
    // they see end of file as soon as the master is gone, however it died.
    this.lifeline = makePipe(true);
  }

  /** Starts the poll loop, inet services' first process and wake-up timers. */
  start(): void {
    this.loopDone = this.loop();
    for (const s of this.services) this.activate(s);
  }

  /** Called for a new (or changed) service: prestart and wake-up timer. */
  activate(s: RunningService): void {
    if (s.spec.type === "inet" && s.procs.size === 0) this.spawnProcess(s);
    if (s.spec.wakeup > 0 && (s.spec.type === "unix" || s.spec.type === "fifo")) {
      const fire = () => this.wakeup(s);
      // Postfix sends the first wake-up at once, then every N seconds.
      if (!s.spec.wakeupConditional) setTimeout(fire, 0);
      s.setWakeup(setInterval(fire, s.spec.wakeup * 1000));
    }
    this.interrupt();
  }

  private wakeup(s: RunningService): void {
    if (s.stopped || (s.spec.wakeupConditional && s.procs.size === 0)) return;
    const endpoint = s.spec.endpoints[0];
    if (!endpoint || endpoint.kind === "inet") return;
    sendTrigger(endpoint.path, TRIGGER_WAKEUP).catch((err) =>
      debug(`wakeup ${s.spec.name}: ${(err as Error).message}`)
    );
  }

  /** Makes the poll loop look at the (changed) descriptor set. */
  interrupt(): void {
    try {
      writeFd(this.wake[1], new Uint8Array([1]));
    } catch {
      // A full wake pipe already guarantees a wake-up.
    }
  }

  private async loop(): Promise<void> {
    const buf = new Uint8Array(4096);
    while (this.running) {
      const watch: PollFd[] = [{ fd: this.wake[0], events: POLLIN }];
      const owners: (RunningService | "status" | null)[] = [null];
      const statusOf: RunningService[] = [];
      for (const s of this.services) {
        watch.push({ fd: s.statusRead, events: POLLIN });
        owners.push("status");
        statusOf.push(s);
        if (!s.wantsClients()) continue;
        for (const fd of s.fds) {
          watch.push({ fd, events: POLLIN });
          owners.push(s);
        }
      }
      await pollAsync(watch, 60_000);
      if (!this.running) break;
      while (readFd(this.wake[0], buf) > 0);
      let statusIndex = 0;
      for (let i = 1; i < watch.length; i++) {
        const owner = owners[i];
        if (owner === "status") {
          const s = statusOf[statusIndex++];
          if (watch[i].revents) this.readStatus(s, buf);
        } else if (owner && watch[i].revents && owner.wantsClients()) {
          if (!this.wakeSpare(owner)) this.spawnProcess(owner);
        }
      }
    }
  }

  private readStatus(s: RunningService, buf: Uint8Array<ArrayBuffer>): void {
    let text = "";
    for (;;) {
      const n = readFd(s.statusRead, buf);
      if (n <= 0) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    for (const msg of parseStatus(text)) {
      const proc = s.procs.get(msg.pid);
      // Reports from a process of an earlier configuration are stale.
      if (!proc || proc.generation !== msg.generation) continue;
      if (msg.status === "standby") {
        if (proc.standby) proc.standby = "ready";
        continue;
      }
      if (msg.status === "taken" || msg.status === "retiring") {
        proc.used = true;
        if (proc.avail) {
          proc.avail = false;
          s.avail--;
        }
        // Every process busy at the limit: new clients wait (Postfix warns, limit > 1).
        const max = s.spec.maxProc;
        if (msg.status === "retiring") {
          // Its successor takes over now, and the next spare loads meanwhile.
          // A spare still loading: processes live shorter than a start, so
          // keep more spares in flight (at most four).
          if (s.avail === 0 && !this.wakeSpare(s) && s.loadingSpare()) {
            s.spares = Math.min(4, s.spares + 1);
          }
          this.startSpare(s);
        }
        if (max > 1 && s.avail === 0 && s.procs.size >= max) s.warnLimit();
      } else if (!proc.avail) {
        proc.avail = true;
        s.avail++;
      }
    }
  }

  /** Wakes a loaded spare of `s`, if it has one; true when it did. */
  private wakeSpare(s: RunningService): boolean {
    for (const proc of s.procs.values()) {
      if (proc.standby !== "ready" || proc.stopping) continue;
      try {
        process.kill(proc.pid, "SIGUSR1");
      } catch {
        continue; // Gone: its exit event is on its way.
      }
      proc.standby = undefined;
      proc.avail = true;
      s.avail++;
      return true;
    }
    return false;
  }

  /** Starts spares for `s` up to its number of spares, within its process limit. */
  private startSpare(s: RunningService): void {
    if (s.stopped || s.throttled || !this.running) return;
    let have = 0;
    for (const proc of s.procs.values()) if (proc.standby) have++;
    for (; have < s.spares; have++) {
      if (s.spec.maxProc !== 0 && s.procs.size >= s.spec.maxProc) return;
      this.spawnProcess(s, true);
    }
  }

  /** Starts one process of `s` (Postfix's master_spawn); a spare when `standby`. */
  spawnProcess(s: RunningService, standby = false): void {
    const spec = s.spec;
    const args = childArgs(spec, s.fds.length, this.verbose);
    const cmd = launchCommand(this.config, spec.command, args);
    const asUser = spec.unprivileged ? this.credentials : undefined;
    const generation = this.generation;
    let child: ChildProcess;
    try {
      child = spawn(cmd.file, cmd.args, {
        argv0: cmd.argv0,
        stdio: [
          "ignore",
          this.stdio,
          this.stdio,
          "ignore",
          this.lifeline[0],
          s.statusWrite,
          ...s.fds,
        ],
        env: {
          ...process.env,
          ...this.cacheEnv(asUser),
          MAIL_CONFIG: this.config.configDir,
          [GENERATION_ENV]: String(generation),
          ...(standby ? { [STANDBY_ENV]: "1" } : {}),
        },
        uid: asUser?.uid,
        gid: asUser?.gid,
        detached: true,
      });
    } catch (err) {
      this.startupFailed(s, cmd.path, err);
      return;
    }
    if (child.pid === undefined) {
      child.on("error", (err) => this.startupFailed(s, cmd.path, err));
      return;
    }
    const proc: Proc = {
      pid: child.pid,
      child,
      avail: !standby,
      used: false,
      generation,
      stopping: false,
      standby: standby ? "starting" : undefined,
    };
    s.procs.set(proc.pid, proc);
    if (!standby) s.avail++;
    debug(`spawn command ${cmd.path}; pid ${proc.pid}`);
    child.on("error", () => {/* reported through "exit" */});
    child.on("exit", (code, signal) => this.reap(s, proc, cmd.path, code, signal));
  }

  /**
   * Run from source as mail_owner, the runtime cannot use root's module cache
   * and would transpile every module at every start (0.25 s instead of 0.06 s
   * here): give it one in data_directory, which mail_owner owns.
   */
  private cacheEnv(asUser: Credentials | undefined): Record<string, string> {
    if (!asUser || launcherWords(this.config).length === 0) return {};
    const data = this.config.get("data_directory");
    return data ? { DENO_DIR: `${data}/deno` } : {};
  }

  private startupFailed(s: RunningService, path: string, err: unknown): void {
    const text = err instanceof Error && "code" in err && err.code === "ENOENT"
      ? "No such file or directory"
      : err instanceof Error && "code" in err && err.code === "EACCES"
      ? "Permission denied"
      : (err as Error).message;
    // Postfix's child logs this before exec fails; there is no child here.
    panicNoExit("fatal", `master_spawn: exec ${path}: ${text}`);
    this.throttleService(s, path);
  }

  /** A child ended: account for it, warn when it ended badly, throttle on startup failure. */
  private reap(
    s: RunningService,
    proc: Proc,
    path: string,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    s.procs.delete(proc.pid);
    if (proc.avail) s.avail--;
    // A spare that idled out was not needed: back to one.
    if (proc.standby) s.spares = 1;
    const normal = code === 0 && signal === null;
    if (!normal && !proc.stopping && this.running) {
      if (signal) {
        const number = signalNumber(signal);
        warn(`process ${path} pid ${proc.pid} killed by signal ${number}`);
      } else {
        warn(`process ${path} pid ${proc.pid} exit status ${code}`);
      }
      if (!proc.used && !s.throttled && !s.stopped) this.throttleService(s, path);
    }
    this.interrupt();
  }

  private throttleService(s: RunningService, path: string): void {
    if (s.throttled || !this.running) return;
    warn(`${path}: bad command startup -- throttling`);
    s.throttle(this.config.time("service_throttle_time"), () => {
      // Services that start with the master are started again after the pause.
      if (s.spec.type === "inet" && s.procs.size === 0 && !s.stopped) this.spawnProcess(s);
      this.interrupt();
    });
    this.interrupt();
  }

  /** Asks every process of `s` to finish and exit (reload, removal, shutdown). */
  stopProcesses(s: RunningService, signal: NodeJS.Signals = "SIGTERM"): void {
    for (const proc of s.procs.values()) {
      proc.stopping = true;
      try {
        process.kill(proc.pid, signal);
      } catch {
        // Already gone: its exit event is on its way.
      }
    }
  }

  /** Retires a service: no more listening, processes told to stop, sockets closed. */
  retire(s: RunningService, closeSockets: boolean): void {
    s.stopped = true;
    s.clearTimers();
    // SIGHUP: each process finishes the clients it has, then exits (master(8) on reload).
    this.stopProcesses(s, "SIGHUP");
    if (closeSockets) { for (const fd of s.fds) closeFd(fd); }
    closeFd(s.statusWrite);
    // The read end stays until the children are gone; it is closed at exit.
  }

  /** Bumps the generation: reports from older processes are ignored. */
  nextGeneration(): void {
    this.generation++;
  }

  /** Every child of every service. */
  allProcs(): Proc[] {
    return this.services.flatMap((s) => [...s.procs.values()]);
  }

  /** Stops everything: SIGTERM to all children, SIGKILL to those left after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    for (const s of this.services) {
      s.stopped = true;
      s.clearTimers();
      for (const fd of s.fds) closeFd(fd);
      this.stopProcesses(s);
    }
    const deadline = Date.now() + graceMs;
    while (this.allProcs().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const proc of this.allProcs()) {
      try {
        process.kill(proc.pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    while (this.allProcs().length > 0 && Date.now() < deadline + 2000) {
      await new Promise((r) => setTimeout(r, 25));
    }
    this.running = false;
    this.interrupt();
    await this.loopDone;
    closeFd(this.lifeline[1]);
  }
}
