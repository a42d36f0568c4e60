// master: the resident process that runs Posthorn's daemons on demand, as
// Postfix's master(8) with master.cf as master(5) describes it. It locks
// pid/master.pid (one master per queue), creates every service's listening
// socket itself, starts processes when clients arrive, restarts and throttles
// them, sends wake-up triggers, re-reads its configuration on SIGHUP and
// passes SIGTERM on to its children. It always runs in the foreground:
// `postfix start` detaches it.

import { getopt, GetoptError } from "../../lib/getopt.ts";
import { configureLog, fatal, FatalError, info, warn } from "../../lib/log.ts";
import type { ProgramContext } from "../../lib/program.ts";
import { type Config, loadConfig, setupLogging } from "../../lib/config/mod.ts";
import { MasterCfError, parseMasterCf } from "../../lib/config/master_cf.ts";
import { closeFd, isLocked, writeFd } from "../../lib/ffi/libc.ts";
import { lockMasterPid, masterPidPath, prepareQueue } from "../../lib/daemon/instance.ts";
import { type Credentials, mailOwnerCredentials } from "../../lib/daemon/users.ts";
import { logToInheritedStdout } from "../../lib/daemon/stdout_log.ts";
import { checkMasterCf, MasterCfCheckError } from "../../lib/daemon/master_cf_check.ts";
import { buildServices, type Service, ServiceError } from "./services.ts";
import { EndpointError, openEndpoints, removeEndpointFile } from "./endpoints.ts";
import { RunningService, Supervisor } from "./supervisor.ts";

/** The environment variable naming a descriptor on which the master reports readiness. */
export const READY_FD_ENV = "POSTHORN_READY_FD";

/** Entry point: `master [-Ddistvw] [-c config_dir] [-e exit_time]`. */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name });
  const readyFd = Number(Deno.env.get(READY_FD_ENV) ?? "-1");
  try {
    return await runMaster(args, readyFd);
  } catch (err) {
    if (err instanceof FatalError) tellReady(readyFd, `fatal: ${err.message}`);
    throw err;
  }
}

interface MasterOptions {
  configDir?: string;
  exitTime: number;
  test: boolean;
  verbose: number;
}

function parseOptions(args: string[]): MasterOptions {
  const options: MasterOptions = { exitTime: 0, test: false, verbose: 0 };
  let parsed;
  try {
    parsed = getopt(args, "c:De:distvw");
  } catch (err) {
    if (err instanceof GetoptError) fatal(err.message);
    throw err;
  }
  for (const { flag, arg } of parsed.options) {
    if (flag === "c") options.configDir = arg;
    else if (flag === "e") options.exitTime = parseInt(arg ?? "0", 10) || 0;
    else if (flag === "t") options.test = true;
    else if (flag === "v") options.verbose++;
    // -d, -s, -i, -w, -D: the master always stays in the foreground here.
  }
  if (parsed.operands.length) fatal("usage: master [-Ddistvw] [-c config_dir] [-e exit_time]");
  return options;
}

async function runMaster(args: string[], readyFd: number): Promise<number> {
  const options = parseOptions(args);
  // -c also sets the configuration of every child (master(8)).
  if (options.configDir) Deno.env.set("MAIL_CONFIG", options.configDir);
  const config = loadConfig({ configDir: options.configDir, program: "master" });
  if (options.test) return isLocked(masterPidPath(config)) ? 1 : 0;
  setupLogging(config, "master", { stderr: !config.get("maillog_file"), verbose: options.verbose });
  requireRuntime(Deno.version.deno);
  const credentials = mailOwnerCredentials(config);
  prepareQueue(config, credentials);
  shareMaillog(config.get("maillog_file"), credentials);
  logToInheritedStdout(config.get("maillog_file"));
  const lockFd = lockMasterPid(config);
  const master = new Master(config, credentials, options.verbose);
  master.configure(readServices(config));
  master.supervisor.start();
  info(
    `daemon started -- version ${config.get("mail_version")}, configuration ${config.configDir}`,
  );
  tellReady(readyFd, "ok");
  const finished = master.waitForSignals();
  if (options.exitTime > 0) {
    setTimeout(() => master.terminate("master exit time has arrived"), options.exitTime * 1000);
  }
  await finished;
  closeFd(lockFd);
  return 0;
}

/**
 * Every Posthorn process appends to maillog_file itself (there is no
 * postlogd), so as root the file is created if needed and handed to
 * mail_owner, whose daemons must be able to write it.
 */
function shareMaillog(file: string, owner: Credentials | undefined): void {
  if (!owner || !file || file.startsWith("/dev/")) return;
  try {
    Deno.writeFileSync(file, new Uint8Array(0), { append: true, create: true, mode: 0o640 });
    Deno.chownSync(file, owner.uid, owner.gid);
  } catch (err) {
    warn(`maillog_file ${file}: ${(err as Error).message}`);
  }
}

/** Children are handed descriptors in spawn stdio slots, which works since Deno 2.9. */
export function requireRuntime(version: string): void {
  const [major, minor] = version.split(".").map((n) => parseInt(n, 10));
  if (major < 2 || (major === 2 && minor < 9)) {
    fatal(`Deno ${version} cannot pass listening sockets to daemons: Deno 2.9 or later is needed`);
  }
}

function tellReady(fd: number, text: string): void {
  if (fd < 0) return;
  try {
    writeFd(fd, new TextEncoder().encode(text + "\n"));
    closeFd(fd);
  } catch {
    // Nobody is waiting any more.
  }
}

/** master.cf parsed and turned into services; fatal with Postfix's wording. */
function readServices(config: Config): Service[] {
  try {
    return loadServices(config);
  } catch (err) {
    if (
      err instanceof MasterCfCheckError || err instanceof MasterCfError ||
      err instanceof ServiceError
    ) {
      fatal(err.message);
    }
    throw err;
  }
}

function loadServices(config: Config): Service[] {
  const file = `${config.configDir}/master.cf`;
  let source: string;
  try {
    source = Deno.readTextFileSync(file);
  } catch (err) {
    throw new ServiceError(`open ${file}: ${(err as Error).message.replace(/ \(os error.*$/, "")}`);
  }
  checkMasterCf(source, file);
  return buildServices(parseMasterCf(source, file), config);
}

/** The master's state across reloads. */
class Master {
  supervisor: Supervisor;
  private mainCf: string;
  private stop?: (value: void) => void;
  private terminating = false;

  constructor(
    private config: Config,
    private credentials: Credentials | undefined,
    verbose: number,
  ) {
    // With maillog_file = /dev/stdout (containers, start-fg) the children log to our stdout.
    this.supervisor = new Supervisor(config, credentials, verbose, "inherit");
    this.mainCf = readMainCf(config);
  }

  /** Opens the sockets of every service (fatal on the first that fails, as Postfix). */
  configure(services: Service[]): void {
    const backlog = this.config.int("default_process_limit") > 0 ? 1024 : 128;
    for (const spec of services) {
      let fds: number[];
      try {
        fds = openEndpoints(spec.endpoints, backlog, this.credentials);
      } catch (err) {
        if (err instanceof EndpointError) fatal(err.message);
        throw err;
      }
      this.supervisor.services.push(new RunningService(spec, fds));
    }
  }

  /** Resolves when a SIGTERM or SIGINT has stopped everything. */
  waitForSignals(): Promise<void> {
    const done = new Promise<void>((resolve) => this.stop = resolve);
    Deno.addSignalListener("SIGTERM", () => this.terminate("terminating on signal 15"));
    Deno.addSignalListener("SIGINT", () => this.terminate("terminating on signal 2"));
    Deno.addSignalListener("SIGHUP", () => this.reload());
    return done;
  }

  async terminate(why: string): Promise<void> {
    if (this.terminating) return;
    this.terminating = true;
    info(why);
    await this.supervisor.shutdown(5000);
    this.stop?.();
  }

  /** SIGHUP: both files re-read; changed services restarted, the others kept. */
  reload(): void {
    if (this.terminating) return;
    let config: Config;
    let services: Service[];
    try {
      config = loadConfig({ configDir: this.config.configDir, program: "master" });
      services = loadServices(config);
    } catch (err) {
      // Postfix's master would die here; keeping the running configuration is kinder.
      const text = err instanceof Error ? err.message : String(err);
      if (!(err instanceof FatalError)) warn(text);
      warn(`reload failed: keeping the configuration in force`);
      return;
    }
    setupLogging(config, "master", { stderr: !config.get("maillog_file") });
    info(`reload -- version ${config.get("mail_version")}, configuration ${config.configDir}`);
    const mainCf = readMainCf(config);
    const mainChanged = mainCf !== this.mainCf;
    this.mainCf = mainCf;
    this.config = config;
    this.apply(services, config, mainChanged);
  }

  private apply(services: Service[], config: Config, mainChanged: boolean): void {
    const sup = this.supervisor;
    sup.config = config;
    sup.nextGeneration();
    const old = new Map(sup.services.map((s) => [s.spec.key, s]));
    const next: RunningService[] = [];
    const started: RunningService[] = [];
    for (const spec of services) {
      const prev = old.get(spec.key);
      old.delete(spec.key);
      if (prev && !mainChanged && prev.spec.fingerprint === spec.fingerprint) {
        next.push(prev);
        continue;
      }
      const sameAddress = prev &&
        JSON.stringify(prev.spec.endpoints) === JSON.stringify(spec.endpoints);
      let fds: number[];
      try {
        fds = sameAddress ? prev.fds : openEndpoints(spec.endpoints, 1024, this.credentials);
      } catch (err) {
        warn(`${(err as Error).message}: service ${spec.key} not changed`);
        if (prev) next.push(prev);
        continue;
      }
      if (prev) sup.retire(prev, !sameAddress);
      const fresh = new RunningService(spec, fds);
      next.push(fresh);
      started.push(fresh);
    }
    for (const removed of old.values()) {
      sup.retire(removed, true);
      for (const endpoint of removed.spec.endpoints) removeEndpointFile(endpoint);
    }
    // Processes of retired services still run out their exit in the old objects.
    sup.services = next;
    for (const s of started) sup.activate(s);
    sup.interrupt();
  }
}

function readMainCf(config: Config): string {
  try {
    return Deno.readTextFileSync(`${config.configDir}/main.cf`);
  } catch {
    return "";
  }
}
