// The daemon runtime: Postfix's server skeletons (single, multi, event,
// trigger, dgram) for Posthorn. It takes the listening descriptors from the
// master (or creates its own with -L), accepts with a concurrency limit,
// bounds each request in time, exits after max_idle idle seconds or max_use
// requests, reports busy/idle on the master's status pipe, exits on SIGTERM
// and when the master is gone, and turns an unexpected error into a logged
// fatal exit (the master restarts the service). A daemon module is its
// handler and one call to a skeleton.

import * as net from "node:net";
import { type Config, loadConfig, setupLogging } from "../config/mod.ts";
import {
  acceptFd,
  closeFd,
  isOpen,
  listenInet,
  listenUnix,
  openFifo,
  pollAsync,
  POLLIN,
  pollSync,
  readFd,
  recvFd,
  setNonblocking,
  SOCK_DGRAM,
  writeFd,
} from "../ffi/libc.ts";
import { configureLog, debug, fatal, FatalError, panicNoExit, warn } from "../log.ts";
import { logToInheritedStdout } from "./stdout_log.ts";
import type { ProgramContext } from "../program.ts";
import { type DaemonArgs, DaemonArgsError, parseDaemonArgs } from "./args.ts";
import {
  type ChildStatus,
  formatStatus,
  GENERATION_ENV,
  MASTER_LIFELINE_FD,
  MASTER_LISTEN_FD,
  MASTER_STATUS_FD,
  STANDBY_ENV,
} from "./protocol.ts";

/** What a handler knows about the daemon it runs in. */
export interface DaemonContext {
  /** main.cf with this service's -o overrides on top. */
  config: Config;
  /** The master.cf service name (`submission`) and type (`inet`). */
  service: string;
  type: string;
  /** The program name (`smtpd`). */
  program: string;
  /** -v count. */
  verbose: number;
  /** Whether a master started this process (false with -L). */
  managed: boolean;
  /** The parsed command line (operands for daemons that take some). */
  args: DaemonArgs;
}

/** Serves one client connection; the connection is closed when it settles. */
export type StreamHandler = (conn: net.Socket, ctx: DaemonContext) => Promise<void> | void;
/** Handles the bytes of one trigger (fifo write or short unix-socket message). */
export type TriggerHandler = (data: Uint8Array, ctx: DaemonContext) => Promise<void> | void;

/** Tuning a daemon gives its skeleton. */
export interface ServerOptions {
  /** Clients served at once by one process (single server: 1). */
  concurrency?: number;
  /** Seconds one request may take before it is cut off; default daemon_timeout. */
  requestTimeout?: number;
  /** Resident daemons (qmgr, tlsmgr) ignore max_idle. */
  ignoreMaxIdle?: boolean;
  /** Resident daemons ignore max_use too. */
  ignoreMaxUse?: boolean;
  /** Runs once after configuration, before the first client. */
  init?: (ctx: DaemonContext) => Promise<void> | void;
}

type Kind = "stream" | "trigger" | "dgram" | "pass";

/** A listening descriptor and how to stop and restart accepting on it. */
interface Listener {
  pause(): void;
  resume(): void;
}

/** The single-threaded server: one client at a time (Postfix single_server). */
export function singleServer(
  args: string[],
  program: ProgramContext,
  handler: StreamHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "stream", { ...options, concurrency: 1 }, handler);
}

/** The multi-client server: several clients at once (Postfix multi_server). */
export function multiServer(
  args: string[],
  program: ProgramContext,
  handler: StreamHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "stream", { concurrency: 100, ...options }, handler);
}

/** The event-driven server: unbounded clients, one process (Postfix event_server). */
export function eventServer(
  args: string[],
  program: ProgramContext,
  handler: StreamHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "stream", { concurrency: Infinity, ...options }, handler);
}

/**
 * The pass server: clients hand over an accepted connection's descriptor on
 * a `pass` socket (postscreen to smtpd in Postfix); each received connection
 * is served as a stream client.
 */
export function passServer(
  args: string[],
  program: ProgramContext,
  handler: StreamHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "pass", { concurrency: 1, ...options }, handler);
}

/** The trigger server: wake-up bytes on a fifo or unix socket (Postfix trigger_server). */
export function triggerServer(
  args: string[],
  program: ProgramContext,
  handler: TriggerHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "trigger", { ...options, concurrency: 1 }, handler);
}

/** The datagram server: one handler call per datagram (Postfix dgram_server). */
export function dgramServer(
  args: string[],
  program: ProgramContext,
  handler: TriggerHandler,
  options: ServerOptions = {},
): Promise<number> {
  return serve(args, program, "dgram", { ...options, concurrency: 1 }, handler);
}

async function serve(
  argv: string[],
  program: ProgramContext,
  kind: Kind,
  options: ServerOptions,
  handler: StreamHandler | TriggerHandler,
): Promise<number> {
  configureLog({ program: program.name });
  let args: DaemonArgs;
  try {
    args = parseDaemonArgs(argv, program.name);
  } catch (err) {
    if (err instanceof DaemonArgsError) fatal(err.message);
    throw err;
  }
  const managed = args.listen.length === 0 && isOpen(MASTER_STATUS_FD);
  const config = loadConfig({ program: program.name }).withOverrides(args.overrides);
  setupLogging(config, program.name, { stderr: !managed, verbose: args.verbose });
  logToInheritedStdout(config.get("maillog_file"));
  const ctx: DaemonContext = {
    config,
    service: args.service,
    type: args.type,
    program: program.name,
    verbose: args.verbose,
    managed,
    args,
  };
  const fds = managed ? inheritedFds(args.socketCount, args.type) : args.listen.map(openListen);
  if (fds.length === 0) fatal("no listening socket: run me from the master or give -L address");
  const runtime = new Runtime(ctx, options, kind);
  await options.init?.(ctx);
  return runtime.run(fds, handler);
}

/** Reads the descriptor a pass client sends on `carrier` (closed afterwards); -1 if none. */
async function receivePassed(carrier: number): Promise<number> {
  try {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await pollAsync([{ fd: carrier, events: POLLIN }], 1000);
      const fd = recvFd(carrier);
      if (fd >= 0) return fd;
      // Nothing yet (EAGAIN) or the peer closed without a descriptor.
      if (pollSync([{ fd: carrier, events: POLLIN }], 0) > 0 && recvFd(carrier) < 0) return -1;
    }
    return -1;
  } finally {
    closeFd(carrier);
  }
}

/** A listening descriptor and what kind of endpoint it is. */
interface Endpoint {
  fd: number;
  kind: "stream" | "fifo" | "dgram";
}

function endpointKind(type: string): Endpoint["kind"] {
  return type === "fifo" ? "fifo" : type === "unix-dgram" ? "dgram" : "stream";
}

function inheritedFds(count: number, type: string): Endpoint[] {
  const fds: Endpoint[] = [];
  for (let i = 0; i < count; i++) {
    if (!isOpen(MASTER_LISTEN_FD + i)) fatal(`no listening descriptor ${MASTER_LISTEN_FD + i}`);
    fds.push({ fd: MASTER_LISTEN_FD + i, kind: endpointKind(type) });
  }
  return fds;
}

/** Opens a -L address: `unix:PATH`, `dgram:PATH`, `fifo:PATH` or `inet:HOST:PORT`. */
function openListen(address: string): Endpoint {
  const colon = address.indexOf(":");
  const kind = address.slice(0, colon);
  const where = address.slice(colon + 1);
  try {
    if (kind === "unix") return { fd: listenUnix(where, 100), kind: "stream" };
    if (kind === "dgram") return { fd: listenUnix(where, 0, SOCK_DGRAM), kind: "dgram" };
    if (kind === "fifo") return { fd: openFifo(where, 0o622), kind: "fifo" };
    if (kind === "inet") {
      const at = where.lastIndexOf(":");
      const host = where.slice(0, at).replace(/^\[|\]$/g, "");
      return { fd: listenInet(host, Number(where.slice(at + 1)), 100), kind: "stream" };
    }
  } catch (err) {
    fatal(`listen ${address}: ${(err as Error).message}`);
  }
  fatal(`bad listen address: ${address}`);
}

/** One daemon process's accounting: clients in progress, uses, idle timer, status. */
class Runtime {
  private active = 0;
  private used = 0;
  private exiting = false;
  private draining = false;
  private reported: ChildStatus = "available";
  private listeners: Listener[] = [];
  private idleTimer?: ReturnType<typeof setTimeout>;
  private done!: (code: number) => void;
  private readonly generation = Number(Deno.env.get(GENERATION_ENV) ?? "0");
  private readonly maxIdle: number;
  private readonly maxUse: number;
  private readonly timeout: number;
  private readonly concurrency: number;

  constructor(readonly ctx: DaemonContext, readonly options: ServerOptions, readonly kind: Kind) {
    const { config, managed } = ctx;
    this.maxIdle = managed && !options.ignoreMaxIdle ? config.time("max_idle") : 0;
    this.maxUse = managed && !options.ignoreMaxUse ? config.int("max_use") : 0;
    this.timeout = options.requestTimeout ?? config.time("daemon_timeout");
    this.concurrency = options.concurrency ?? 1;
  }

  /** Serves until idle, used up, signalled or orphaned; resolves with the exit status. */
  run(fds: Endpoint[], handler: StreamHandler | TriggerHandler): Promise<number> {
    const finished = new Promise<number>((resolve) => this.done = resolve);
    this.containErrors();
    // SIGTERM (postfix stop): exit now. SIGHUP (the master's reload retired
    // this configuration): take no new client, finish the current ones, exit.
    Deno.addSignalListener("SIGTERM", () => this.exit(0));
    Deno.addSignalListener("SIGHUP", () => this.drain());
    if (this.ctx.managed) this.watchMaster();
    const start = () => {
      if (this.exiting || this.draining) return;
      for (const fd of fds) this.listeners.push(this.listen(fd, handler));
      this.report("available");
      this.armIdle();
    };
    if (this.ctx.managed && Deno.env.get(STANDBY_ENV) === "1") {
      // A spare: loaded, it waits for the master's SIGUSR1 before touching
      // the sockets (and exits after max_idle if never needed).
      let woken = false;
      Deno.addSignalListener("SIGUSR1", () => {
        if (woken) return;
        woken = true;
        clearTimeout(this.idleTimer);
        start();
      });
      this.report("standby");
      this.armIdle();
    } else {
      start();
    }
    return finished;
  }

  private listen({ fd, kind }: Endpoint, handler: StreamHandler | TriggerHandler): Listener {
    if (kind === "dgram" || kind === "fifo") {
      return this.listenPolled(fd, handler as TriggerHandler);
    }
    if (this.kind === "pass") return this.listenPass(fd, handler as StreamHandler);
    const onConnection = this.kind === "trigger"
      ? (conn: net.Socket) => this.triggerOnSocket(conn, handler as TriggerHandler)
      : (conn: net.Socket) => this.request(() => (handler as StreamHandler)(conn, this.ctx), conn);
    return this.listenStream(fd, (conn) => onConnection(conn as net.Socket));
  }

  /**
   * Accepts only while there is room: a poll on a worker thread, accept4(2)
   * through FFI, and the accepted descriptor served as a node:net socket
   * (`new net.Socket({ fd })`). A busy process thus leaves waiting clients in
   * the shared backlog for its siblings, which the master starts when this
   * one reports "taken". (node:net `listen({ fd })` accepts in bursts, and
   * closing the server to pause dropped the connections of a burst.)
   */
  private listenStream(
    fd: number,
    onConnection: (conn: net.Socket | number) => void,
    raw = false,
  ): Listener {
    // Shared with the master and siblings: accept must never block the event loop.
    setNonblocking(fd, true);
    let paused = false;
    let polling = false;
    const loop = async () => {
      if (polling) return;
      polling = true;
      try {
        while (!paused && !this.exiting) {
          const ready = await pollAsync([{ fd, events: POLLIN }], 5000);
          if (paused || this.exiting) break;
          if (ready <= 0) continue;
          let conn: number;
          try {
            conn = acceptFd(fd);
          } catch (err) {
            warn(`accept: ${(err as Error).message}`);
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          // -1: a sibling process took this client first.
          if (conn >= 0) {
            onConnection(raw ? conn : new net.Socket({ fd: conn, readable: true, writable: true }));
          }
        }
      } finally {
        polling = false;
      }
    };
    const resume = () => {
      paused = false;
      loop();
    };
    resume();
    return { pause: () => paused = true, resume };
  }

  /** A pass socket: each accepted unix connection carries one descriptor to serve. */
  private listenPass(fd: number, handler: StreamHandler): Listener {
    return this.listenStream(fd, (carrier) => {
      this.request(async () => {
        const passed = await receivePassed(carrier as number);
        if (passed < 0) return;
        const conn = new net.Socket({ fd: passed, readable: true, writable: true });
        try {
          await handler(conn, this.ctx);
        } finally {
          if (!conn.destroyed) conn.end();
        }
      });
    }, true);
  }

  /**
   * A fifo or a unix-dgram socket: poll on a worker thread and read(2)
   * through FFI; each read (a datagram, or what was written to the fifo) is
   * one handler call. (A node:net socket over an inherited descriptor was
   * seen to miss data that arrived while it was being set up.)
   */
  private listenPolled(fd: number, handler: TriggerHandler): Listener {
    let paused = false;
    let polling = false;
    const buf = new Uint8Array(65536);
    const loop = async () => {
      if (polling) return;
      polling = true;
      try {
        while (!paused && !this.exiting) {
          const ready = await pollAsync([{ fd, events: POLLIN }], 5000);
          if (ready <= 0 || paused || this.exiting) continue;
          const n = readFd(fd, buf);
          // -1: a sibling read it first; 0 cannot happen (the master holds a writer).
          if (n > 0) this.request(() => handler(buf.slice(0, n), this.ctx));
        }
      } finally {
        polling = false;
      }
    };
    const resume = () => {
      paused = false;
      loop();
    };
    resume();
    return { pause: () => paused = true, resume };
  }

  /** A trigger over a stream socket: read what the client sends, then handle it. */
  private triggerOnSocket(conn: net.Socket, handler: TriggerHandler): void {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      conn.destroy();
      const data = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        data.set(c, at);
        at += c.length;
      }
      if (size > 0) this.request(() => handler(data, this.ctx));
    };
    // A client that never closes: what it wrote so far is the trigger (Postfix reads once).
    conn.setTimeout(5000, finish);
    conn.on("data", (c: Uint8Array) => {
      if (size < 1024) chunks.push(c), size += c.length;
    });
    conn.on("end", finish);
    conn.on("error", () => conn.destroy());
  }

  /** Runs one request with the concurrency, timeout and use accounting around it. */
  private async request(work: () => Promise<void> | void, conn?: net.Socket): Promise<void> {
    this.begin();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), this.timeout * 1000);
      });
      const outcome = await Promise.race([Promise.resolve().then(work), timedOut]);
      if (outcome === "timeout") {
        warn(`${this.ctx.service}: request timeout after ${this.timeout}s`);
      }
    } catch (err) {
      this.die(err);
    } finally {
      clearTimeout(timer);
      if (conn && !conn.destroyed) conn.end();
      this.end();
    }
  }

  private begin(): void {
    this.active++;
    this.used++;
    clearTimeout(this.idleTimer);
    if (this.active >= this.concurrency || this.usedUp()) {
      for (const l of this.listeners) l.pause();
      // The last client before max_use: the master wakes a spare in our place.
      this.report(this.usedUp() ? "retiring" : "taken");
    }
  }

  private end(): void {
    this.active--;
    if (this.usedUp() || this.draining) {
      if (this.active === 0) {
        debug(`${this.ctx.service}: ${this.draining ? "reload" : "max_use reached"} -- exiting`);
        this.exit(0);
      }
      return;
    }
    if (this.active < this.concurrency && !this.exiting) {
      for (const l of this.listeners) l.resume();
      this.report("available");
    }
    this.armIdle();
  }

  /** Stops accepting and exits once the clients in progress are done. */
  private drain(): void {
    this.draining = true;
    for (const l of this.listeners) l.pause();
    this.report("taken");
    if (this.active === 0) this.exit(0);
  }

  private usedUp(): boolean {
    return this.maxUse > 0 && this.used >= this.maxUse;
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.maxIdle > 0 && this.active === 0) {
      this.idleTimer = setTimeout(() => {
        debug(`${this.ctx.service}: idle timeout -- exiting`);
        this.exit(0);
      }, this.maxIdle * 1000);
    }
  }

  /** Tells the master whether this process can take another client. */
  private report(status: ChildStatus): void {
    if (!this.ctx.managed || this.reported === status) return;
    this.reported = status;
    try {
      writeFd(MASTER_STATUS_FD, encoder.encode(formatStatus(Deno.pid, this.generation, status)));
    } catch (err) {
      // The master is gone: nobody is left to restart or account for us.
      debug(`status pipe: ${(err as Error).message}`);
      this.exit(0);
    }
  }

  /** Exits when the master's lifeline pipe reaches end of file. */
  private watchMaster(): void {
    if (!isOpen(MASTER_LIFELINE_FD)) return;
    // Nothing is ever written: the pipe becomes readable (end of file) or
    // hangs up only when the master's end is closed.
    const watch = async () => {
      while (!this.exiting) {
        const ready = await pollAsync([{ fd: MASTER_LIFELINE_FD, events: POLLIN }], 60_000);
        if (ready > 0) return this.exit(0);
      }
    };
    watch();
  }

  /** Unexpected errors anywhere end the process with a logged fatal line. */
  private containErrors(): void {
    globalThis.addEventListener("unhandledrejection", (event) => {
      event.preventDefault();
      this.die(event.reason);
    });
    globalThis.addEventListener("error", (event) => {
      event.preventDefault();
      this.die(event.error);
    });
  }

  private die(err: unknown): void {
    if (!(err instanceof FatalError)) {
      const text = err instanceof Error ? err.stack ?? err.message : String(err);
      panicNoExit("fatal", `${this.ctx.service}: unexpected error: ${text.split("\n")[0]}`);
    }
    this.exit(1);
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    for (const l of this.listeners) l.pause();
    for (let i = 0; i < this.ctx.args.socketCount && this.ctx.managed; i++) {
      closeFd(MASTER_LISTEN_FD + i);
    }
    this.done(code);
    // A handler that never settles must not keep the process alive.
    setTimeout(() => Deno.exit(code), 0);
  }
}

const encoder = new TextEncoder();
