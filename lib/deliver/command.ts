// Running an external command for a delivery, as Postfix's pipe_command()
// does for pipe(8) and local(8): the message on standard input, standard
// output and standard error captured (a limited amount) for the diagnostic,
// a clean environment, the recipient's or user='s privileges, a time limit
// after which the whole process group is killed, and the exit status turned
// into a delivery status per <sysexits.h>.
//
// API (what callers use):
//
//   const r = await runCommand({
//     argv: ["/usr/bin/procmail", "-a", ext],   // or command: "cmd | other" (shell when needed)
//     uid, gid,                                  // only applied when running as root
//     env: { HOME: "/home/u", SENDER: "a@b" },   // added after PATH and the exported names
//     exportEnvironment: config.list("export_environment"),
//     stdin: messageBytes(content, { eol: "\n" }),
//     cwd: "/home/u", timeLimit: config.time("command_time_limit"),
//     program: "local",                          // names the process in exec diagnostics
//   });
//   r.outcome  "sent" | "bounced" | "deferred"
//   r.dsn      "2.0.0", "5.1.1", "4.3.0", ...
//   r.text     the reason for status=... ("user unknown. Command output: ...")
//   r.diagText the Diagnostic-Code text (the output, or the sysexits text)
//   r.output   the captured output, made printable ("" when none)
//
// Privileges: Deno.Command's uid/gid make the child call setgroups(0),
// setgid(gid) and setuid(uid) before exec when the parent is root (Rust's
// process spawning clears supplementary groups for a root parent whose
// caller names no groups), so the command never keeps root's groups: it
// runs with gid alone (Postfix's set_ugid() leaves gid as the one
// supplementary group; access is the same). The tests check
// /proc/self/status. This costs no extra exec per delivery, which running
// through setpriv(1) --clear-groups would. `detached` makes the child call
// setsid(), so it leads its own process group and the time limit kills the
// group, offspring included.
//
// Statuses, as the reference's pipe(8) logs them: exit 0 sent; an X.Y.Z
// code leading the output decides; a <sysexits.h> code maps per Postfix's
// table (75 → 4.3.0 deferred, 67 → 5.1.1, 69 → 5.3.0, 77 → 5.7.0 bounced);
// another code bounces 5.3.0 "Command died with status N"; a signal defers
// 4.3.0 "Command died with signal N"; the time limit bounces 5.3.0
// "Command time limit exceeded"; a command that cannot start defers 4.3.0.
// The time limit counts from the start of the command; Postfix applies it
// to each wait for the command (write, read, exit), which differs only for
// a command that trickles its reading past the limit.
//
// chroot: Deno.Command has no hook between fork and exec where chroot(2)
// would go, so the command is started through chroot(8) (coreutils:
// --userspec and --groups drop privileges after entering the jail), and
// chroot(8)'s own failures are reported as Postfix's child reports them.
//
// Output: Postfix points the command's standard output and standard error
// at one pipe; Deno.Command pipes them separately, so both are read at once
// and joined in the order the pieces arrive.

import { panicNoExit, warn } from "../log.ts";
import { signalNumber } from "../signals.ts";

/** What to run and how. Exactly one of `argv` and `command` is given. */
export interface CommandOptions {
  /** An argument vector, executed without a shell (argv[0] searched in PATH). */
  argv?: string[];
  /**
   * A command line: run directly, split on blanks, when it has no shell
   * metacharacters (and is not a shell built-in), otherwise with
   * `/bin/sh -c` (Postfix's exec_command()).
   */
  command?: string;
  /** A shell to run `command` with regardless of its content (local_command_shell): split on blanks, the command appended. */
  shell?: string;
  /** User and group ids; applied only when this process runs as root. */
  uid?: number;
  gid?: number;
  /** Variables set after PATH and the exported ones (they win). */
  env?: Record<string, string>;
  /** Names of variables passed on (export_environment). Default: none. */
  exportEnvironment?: string[];
  /**
   * import_environment: where the exported names take their values (a name
   * this list lacks is not passed; `name=value` entries set values).
   * Default: this process's environment as it is.
   */
  importEnvironment?: string[];
  /** The message, written to the command's standard input. */
  stdin?: Uint8Array;
  /** Working directory (default: this process's); inside `chroot` when that is given. */
  cwd?: string;
  /**
   * Root directory for the command (pipe(8)'s chroot=): entered before the
   * privileges change, then `cwd` (default: the new root). Runs through the
   * system's chroot(8), as Deno has no hook between fork and exec; a `cwd`
   * inside it needs /bin/sh in the jail.
   */
  chroot?: string;
  /** Seconds before the process group is killed (command_time_limit, TRANSPORT_time_limit). */
  timeLimit: number;
  /** Bytes of output kept for the diagnostic (default 4096, Postfix's buffer). */
  outputLimit?: number;
  /** The program name in diagnostics Posthorn writes for the child (default "pipe"). */
  program?: string;
}

/** How the command ended, as a delivery status. */
export interface CommandResult {
  outcome: "sent" | "bounced" | "deferred";
  /** RFC 3463 X.Y.Z. */
  dsn: string;
  /** The reason text (status=... (text)). */
  text: string;
  /** The Diagnostic-Code text. */
  diagText: string;
  /** The captured output, printable, tabs and newlines as spaces. */
  output: string;
  /** The exit code, or undefined when killed by a signal or never started. */
  exitCode?: number;
  /** The signal that ended the command, if any. */
  signal?: string;
  /** Whether the time limit killed the command. */
  timedOut: boolean;
  /** The command as named in diagnostics (argv[0] or the command line). */
  label: string;
}

/** One <sysexits.h> code: the DSN status and the text Postfix gives it. */
export interface SysExitsDetail {
  dsn: string;
  text: string;
}

/** EX_* codes (sysexits.h) and their DSN and text, as Postfix's sys_exits table has them. */
const SYS_EXITS: Record<number, SysExitsDetail> = {
  64: { dsn: "5.3.0", text: "command line usage error" }, // EX_USAGE
  65: { dsn: "5.6.0", text: "data format error" }, // EX_DATAERR
  66: { dsn: "5.3.0", text: "cannot open input" }, // EX_NOINPUT
  67: { dsn: "5.1.1", text: "user unknown" }, // EX_NOUSER
  68: { dsn: "5.1.2", text: "host name unknown" }, // EX_NOHOST
  69: { dsn: "5.3.0", text: "service unavailable" }, // EX_UNAVAILABLE
  70: { dsn: "5.3.0", text: "internal software error" }, // EX_SOFTWARE
  71: { dsn: "4.3.0", text: "system resource problem" }, // EX_OSERR
  72: { dsn: "5.3.0", text: "critical OS file missing" }, // EX_OSFILE
  73: { dsn: "5.2.0", text: "can't create user output file" }, // EX_CANTCREAT
  74: { dsn: "5.3.0", text: "input/output error" }, // EX_IOERR
  75: { dsn: "4.3.0", text: "temporary failure" }, // EX_TEMPFAIL
  76: { dsn: "5.5.0", text: "remote error in protocol" }, // EX_PROTOCOL
  77: { dsn: "5.7.0", text: "permission denied" }, // EX_NOPERM
  78: { dsn: "5.3.5", text: "local configuration error" }, // EX_CONFIG
};

/** EX_TEMPFAIL: what a child that cannot be started reports. */
export const EX_TEMPFAIL = 75;

/** Whether `code` is one of the <sysexits.h> codes (64..78). */
export function isSysExitsCode(code: number): boolean {
  return code in SYS_EXITS;
}

/** The DSN status and text for an exit code; unknown codes are 5.3.0 "unknown mail system error N". */
export function sysExitsDetail(code: number): SysExitsDetail {
  return SYS_EXITS[code] ?? { dsn: "5.3.0", text: `unknown mail system error ${code}` };
}

/** Whether an exit code means "try again later" (a 4.X.X status). */
export function sysExitsSoftError(code: number): boolean {
  return sysExitsDetail(code).dsn.startsWith("4");
}

// Characters that never need a shell (Postfix's exec_command()).
const PLAIN = /^[0-9A-Za-z!@%\-_=+:,./ \t]*$/;

/** Whether a command line goes through /bin/sh (it has shell metacharacters, or is only blanks). */
export function needsShell(command: string): boolean {
  return !PLAIN.test(command) || command.trim() === "";
}

/** The search path every command gets (Postfix's _PATH_DEFPATH). */
export const DEFAULT_PATH = "/usr/bin:/bin";

/**
 * The environment a command gets: the exported names that `source` has
 * (by default this process's environment), PATH, then `extra`.
 */
export function commandEnvironment(
  exportNames: string[] = [],
  extra: Record<string, string> = {},
  source: Record<string, string> = Deno.env.toObject(),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of exportNames) {
    // export_environment may carry name=value like import_environment does.
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    else if (source[entry] !== undefined) env[entry] = source[entry];
  }
  env.PATH = DEFAULT_PATH;
  return Object.assign(env, extra);
}

/**
 * The environment a daemon keeps from the one it was started with
 * (import_environment): `name` keeps that variable when set, `name=value`
 * sets it. Callers apply it once at start-up with applyImportEnvironment().
 */
export function importedEnvironment(
  entries: string[],
  from: Record<string, string> = Deno.env.toObject(),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    else if (from[entry] !== undefined) env[entry] = from[entry];
  }
  return env;
}

/** Replaces this process's environment by the imported one (Postfix's clean_env() at start). */
export function applyImportEnvironment(entries: string[]): void {
  const keep = importedEnvironment(entries);
  for (const name of Object.keys(Deno.env.toObject())) {
    if (!(name in keep)) Deno.env.delete(name);
  }
  for (const [name, value] of Object.entries(keep)) Deno.env.set(name, value);
}

/**
 * Makes command output fit for a log line: tabs and newlines become spaces,
 * other control characters `_`. Output ends at a NUL byte, as the C string
 * Postfix keeps it in does.
 */
export function printableOutput(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(
    nul < 0 ? bytes : bytes.subarray(0, nul),
  );
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === "\t" || ch === "\n") out += " ";
    else if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) || ch === "\ufffd") out += "_";
    else out += ch;
  }
  return out;
}

/** An enhanced status code at the start of command output ("5.1.1 text"), as Postfix's dsn_valid() accepts it. */
export function leadingDsn(output: string): { dsn: string; text: string } | undefined {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?=$|[^\d.])\s*/.exec(output);
  if (!m) return undefined;
  return { dsn: m[1], text: output.slice(m[0].length) };
}

/** The argument vector to execute, and whether it is the shell form. */
function execVector(opts: CommandOptions): { argv: string[]; label: string } {
  if (opts.argv) {
    if (!opts.argv.length) throw new Error("runCommand: empty argv");
    return { argv: opts.argv, label: opts.argv[0] };
  }
  const command = opts.command ?? "";
  if (opts.shell && opts.shell.trim()) {
    return { argv: [...opts.shell.trim().split(/[ \t\r\n]+/), command], label: command };
  }
  if (!needsShell(command)) {
    return { argv: command.trim().split(/[ \t]+/), label: command };
  }
  return { argv: ["/bin/sh", "-c", command], label: command };
}

/** The system error text of a failed spawn ("No such file or directory"). */
function spawnErrorText(err: unknown): string {
  const msg = (err as Error).message ?? String(err);
  const m = /: ([^:]+?) \(os error \d+\)/.exec(msg);
  if (m) return m[1];
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  return msg;
}

/** The system's chroot(8). */
const CHROOT_PROGRAM = ["/usr/sbin/chroot", "/usr/bin/chroot"].find(isFile) ?? "chroot";

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** What a failed cd inside the jail prints, to be told from the command's own output. */
const CHDIR_FAILED = "posthorn: chdir failed";

/** The command line that runs `argv` inside opts.chroot, as opts.uid/gid, in opts.cwd. */
function chrootVector(opts: CommandOptions, argv: string[]): string[] {
  const out = [CHROOT_PROGRAM];
  if (opts.uid !== undefined && opts.gid !== undefined) {
    out.push(`--userspec=${opts.uid}:${opts.gid}`, `--groups=${opts.gid}`);
  }
  out.push(opts.chroot!);
  if (opts.cwd) {
    out.push(
      "/bin/sh",
      "-c",
      `cd -- "$0" 2>&- || { echo "${CHDIR_FAILED}"; exit ${EX_TEMPFAIL}; }; exec "$@"`,
      opts.cwd,
    );
  }
  return [...out, ...argv];
}

/**
 * chroot(8)'s own failures (exit 125-127 with its message), and a failed cd
 * in the jail, as Postfix's child reports them: logged as its fatal error,
 * the delivery deferred (EX_TEMPFAIL), an exec failure shown as output.
 */
function chrootFailure(
  opts: CommandOptions,
  code: number,
  output: string,
): SpawnFailure | undefined {
  if (code === EX_TEMPFAIL && output.trim() === CHDIR_FAILED) {
    const inJail = `${opts.chroot}/${opts.cwd}`.replace(/\/+/g, "/");
    return {
      fatal: `cannot change directory to "${opts.cwd}" for uid=${opts.uid ?? Deno.uid()} gid=${
        opts.gid ?? Deno.gid()
      }: ${isDirectory(inJail) ? "Permission denied" : "No such file or directory"}`,
      inOutput: false,
    };
  }
  // chroot(8) names itself as invoked: "/usr/sbin/chroot: ...".
  const own = /^\S*chroot: (.*)/.exec(output.split("\n")[0]);
  if (code < 125 || code > 127 || !own) return undefined;
  const line = own[1];
  const run = /^failed to run command ['\u2018](.*)['\u2019]: (.*)$/.exec(line);
  if (run) return { fatal: `pipe_command: execvp ${run[1]}: ${run[2]}`, inOutput: true };
  const root = /^cannot change root directory to ['\u2018](.*)['\u2019]: (.*)$/.exec(line);
  if (root) return { fatal: `chroot(${root[1]}): ${root[2]}`, inOutput: false };
  return { fatal: line, inOutput: false };
}

/** Why a child could not start: Postfix's child logs a fatal error, and shows it in its output unless chdir failed (it logs before its output is set up). */
interface SpawnFailure {
  fatal: string;
  inOutput: boolean;
}

/** Starts the child, or says why it could not start. */
function spawnChild(
  opts: CommandOptions,
  argv: string[],
  env: Record<string, string>,
): Deno.ChildProcess | SpawnFailure {
  const root = Deno.uid() === 0;
  const options: Deno.CommandOptions = {
    args: argv.slice(1),
    clearEnv: true,
    env,
    cwd: opts.cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  };
  if (opts.chroot) {
    // chroot(8) enters the jail as root and drops privileges itself.
    argv = chrootVector(opts, argv);
    options.args = argv.slice(1);
    options.cwd = undefined;
  } else {
    if (root && opts.uid !== undefined) options.uid = opts.uid;
    if (root && opts.gid !== undefined) options.gid = opts.gid;
  }
  try {
    return new Deno.Command(argv[0], options).spawn();
  } catch (err) {
    if (!opts.chroot && opts.cwd && !isDirectory(opts.cwd)) {
      return {
        fatal: `cannot change directory to "${opts.cwd}" for uid=${opts.uid ?? Deno.uid()} gid=${
          opts.gid ?? Deno.gid()
        }: No such file or directory`,
        inOutput: false,
      };
    }
    return { fatal: `pipe_command: execvp ${argv[0]}: ${spawnErrorText(err)}`, inOutput: true };
  }
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Collects up to `limit` bytes from the command's output streams, in arrival order. */
class OutputCollector {
  private parts: Uint8Array[] = [];
  private size = 0;
  private readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  readonly done: Promise<void>;

  constructor(streams: ReadableStream<Uint8Array>[], private readonly limit: number) {
    this.done = Promise.all(streams.map((s) => this.drain(s))).then(() => {});
  }

  private async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.getReader();
    this.readers.push(reader);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const room = this.limit - this.size;
        if (room > 0) {
          const piece = value.length > room ? value.subarray(0, room) : value;
          this.parts.push(piece);
          this.size += piece.length;
        }
        // Past the limit Postfix stops reading and closes its end: a command
        // that goes on writing gets SIGPIPE.
        if (this.size >= this.limit) {
          await this.cancel();
          return;
        }
      }
    } catch {
      // The stream was cancelled or broke: what was read is kept.
    }
  }

  /** Stops reading both streams. */
  async cancel(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.cancel().catch(() => {})));
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Writes the message; a command that exits without reading it all is no error (EPIPE), other errors are returned. */
async function feedInput(child: Deno.ChildProcess, data: Uint8Array | undefined): Promise<string> {
  const writer = child.stdin.getWriter();
  try {
    if (data?.length) await writer.write(data);
    await writer.close();
    return "";
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe || /broken pipe/i.test(String(err))) return "";
    return spawnErrorText(err);
  } finally {
    try {
      writer.releaseLock();
    } catch {
      // Already released.
    }
  }
}

/** Kills the command's process group (its own process if the group is gone). */
function killGroup(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch (err) {
      warn(`cannot kill process (group) ${pid}: ${(err as Error).message}`);
    }
  }
}

/**
 * Runs one command for a delivery and maps how it ended to a delivery
 * status, as Postfix's pipe_command() does. Never throws for the command's
 * failures: every one becomes a bounced or deferred result.
 */
export async function runCommand(opts: CommandOptions): Promise<CommandResult> {
  const { argv, label } = execVector(opts);
  const env = commandEnvironment(
    opts.exportEnvironment,
    opts.env,
    opts.importEnvironment ? importedEnvironment(opts.importEnvironment) : undefined,
  );
  const limit = opts.outputLimit ?? 4096;
  let child = spawnChild(opts, argv, env);
  // A bare word that is no program may be a shell built-in: try the shell.
  if (
    "fatal" in child && opts.command !== undefined && !opts.shell &&
    argv[0] !== "/bin/sh" && !argv[0].includes("/") && child.inOutput
  ) {
    child = spawnChild(opts, ["/bin/sh", "-c", opts.command], env);
  }
  if ("fatal" in child) return childFailed(opts, label, child, limit);
  const proc = child;
  const collector = new OutputCollector([proc.stdout, proc.stderr], limit);
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      resolve();
    }, Math.max(0, opts.timeLimit) * 1000);
  });
  let inputDone = false;
  const writeError = feedInput(proc, opts.stdin).finally(() => inputDone = true);
  let outputDone = false;
  collector.done.then(() => outputDone = true);
  // As in Postfix, the command is done when its output is closed (offspring
  // holding it count) and it has exited, or when the time is up.
  await Promise.race([Promise.all([writeError, collector.done, proc.status]), deadline]);
  clearTimeout(timer);
  if (timedOut) {
    // Postfix names the step that was waiting when the time ran out.
    if (!inputDone) warn("pipe_command_write: write time limit exceeded");
    else if (!outputDone) warn("pipe_command_read: read time limit exceeded");
    else warn("pipe_command_wait_or_kill: child wait time limit exceeded");
    killGroup(proc.pid);
    await collector.cancel();
  }
  const status = await proc.status;
  const raw = collector.bytes();
  if (opts.chroot && !timedOut && !status.signal) {
    const failed = chrootFailure(opts, status.code, new TextDecoder().decode(raw));
    if (failed) return childFailed(opts, label, failed, limit);
  }
  return statusResult(label, status, printableOutput(raw), {
    outputLength: raw.length,
    timedOut,
    writeError: timedOut ? "" : await writeError,
  });
}

/** What Postfix's child does when it cannot run the command: log the fatal error, exit EX_TEMPFAIL. */
function childFailed(
  opts: CommandOptions,
  label: string,
  failure: SpawnFailure,
  limit: number,
): CommandResult {
  panicNoExit("fatal", failure.fatal);
  const bytes = failure.inOutput
    ? new TextEncoder().encode(`${opts.program ?? "pipe"}: fatal: ${failure.fatal}\n`)
    : new Uint8Array(0);
  const out = bytes.subarray(0, limit);
  return statusResult(label, { code: EX_TEMPFAIL, signal: null }, printableOutput(out), {
    outputLength: out.length,
  });
}

/** Maps the end of a command to a delivery status (Postfix's pipe_command() result). */
export function statusResult(
  label: string,
  status: { code: number; signal: Deno.Signal | string | null },
  output: string,
  how: {
    /** Bytes of output read (output may be shorter: it ends at a NUL). Default: output's length. */
    outputLength?: number;
    timedOut?: boolean;
    /** A write error other than EPIPE. */
    writeError?: string;
  } = {},
): CommandResult {
  const timedOut = how.timedOut ?? false;
  const writeError = how.writeError ?? "";
  const hadOutput = (how.outputLength ?? output.length) > 0;
  const base = {
    output,
    label,
    timedOut,
    exitCode: status.signal ? undefined : status.code,
    signal: status.signal ?? undefined,
  };
  // Postfix tests the byte count, not the text: output of NUL bytes
  // gives ". Command output: " and an empty diagnostic.
  const withOutput = hadOutput ? `. Command output: ${output}` : "";
  const diag = (fallback: string) => hadOutput ? output : fallback;
  if (timedOut) {
    return {
      ...base,
      outcome: "bounced",
      dsn: "5.3.0",
      text: `Command time limit exceeded: "${label}"${withOutput}`,
      diagText: diag(sysExitsDetail(70).text),
    };
  }
  if (status.signal) {
    return {
      ...base,
      outcome: "deferred",
      dsn: "4.3.0",
      text: `Command died with signal ${signalNumber(status.signal)}: "${label}"${withOutput}`,
      diagText: diag(sysExitsDetail(70).text),
    };
  }
  const code = status.code;
  if (code !== 0) {
    const lead = leadingDsn(output);
    if (lead) {
      return {
        ...base,
        outcome: lead.dsn.startsWith("4") ? "deferred" : "bounced",
        dsn: lead.dsn,
        text: lead.text,
        diagText: lead.text,
      };
    }
    const sp = sysExitsDetail(code);
    if (isSysExitsCode(code)) {
      return {
        ...base,
        outcome: sp.dsn.startsWith("4") ? "deferred" : "bounced",
        dsn: sp.dsn,
        text: `${sp.text}${withOutput}`,
        diagText: diag(sp.text),
      };
    }
    return {
      ...base,
      outcome: "bounced",
      dsn: sp.dsn,
      text: `Command died with status ${code}: "${label}"${withOutput}`,
      diagText: diag(sp.text),
    };
  }
  if (writeError) {
    return {
      ...base,
      outcome: "bounced",
      dsn: "5.3.0",
      text: `Command failed: ${writeError}: "${label}"`,
      diagText: writeError,
    };
  }
  return { ...base, outcome: "sent", dsn: "2.0.0", text: output, diagText: output };
}
