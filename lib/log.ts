// Postfix-style logging: msg_info, msg_warn, msg_error, msg_fatal, msg_panic.
//
// Lines go to maillog_file as Postfix's postlogd writes them
// (`Mon DD HH:MM:SS host syslog_name/program[pid]: text`), and to standard
// error as `program: warning: text` for commands. Writes are synchronous and
// appended with O_APPEND, so concurrent processes never interleave a line.

/** Where and under which name this process logs. */
export interface LogSettings {
  /** The program name, as in `postfix/smtpd[123]`. */
  program: string;
  /** syslog_name; `postfix` by default. */
  syslogName: string;
  /** maillog_file, or "" when none. */
  maillogFile: string;
  /** Also write `program: text` lines to standard error. */
  stderr: boolean;
  /** Verbosity (-v count); debug lines are written when above zero. */
  verbose: number;
  /** The host name in maillog_file lines (myhostname; its first label is written). */
  hostname: string;
  /** The name before `: ` on standard error; the program name when empty. */
  stderrTag: string;
  /** The tag in maillog_file lines; `syslog_name/program` when empty. */
  tag: string;
}

/** Thrown by fatal() and panic(): the program logs and exits with status 1. */
export class FatalError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "FatalError";
  }
}

const settings: LogSettings = {
  program: "posthorn",
  syslogName: "postfix",
  maillogFile: "",
  stderr: true,
  verbose: 0,
  hostname: shortHostname(),
  stderrTag: "",
  tag: "",
};

const encoder = new TextEncoder();
let maillog: Deno.FsFile | undefined;
let maillogPath = "";
let sink: ((line: string) => void) | undefined;

function shortHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/** Changes the log settings; the fields not given stay as they were. */
export function configureLog(change: Partial<LogSettings>): void {
  Object.assign(settings, change);
  if (maillog && maillogPath !== settings.maillogFile) {
    maillog.close();
    maillog = undefined;
  }
}

/** The settings in force (for tests and for daemons that log under a service name). */
export function logSettings(): Readonly<LogSettings> {
  return settings;
}

/** Captures every formatted line (tests); `undefined` restores normal output. */
export function captureLog(fn: ((line: string) => void) | undefined): void {
  sink = fn;
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The time stamp Postfix writes in maillog_file: `Nov 04 09:05:01` (local time). */
export function logTimestamp(when: Date): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${months[when.getMonth()]} ${p2(when.getDate())} ` +
    `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())}`;
}

/** Formats one maillog_file line for `text` (already carrying its level prefix). */
export function formatLogLine(text: string, when = new Date()): string {
  const host = settings.hostname.split(".")[0];
  const tag = settings.tag || `${settings.syslogName}/${settings.program}`;
  return `${logTimestamp(when)} ${host} ${tag}[${Deno.pid}]: ${text}`;
}

function emit(level: string, text: string): void {
  const body = level ? `${level}: ${text}` : text;
  if (sink) {
    sink(body);
    return;
  }
  if (settings.stderr) {
    writeAll(Deno.stderr, `${settings.stderrTag || settings.program}: ${body}\n`);
  }
  if (settings.maillogFile) {
    appendMaillog(formatLogLine(body) + "\n");
  }
}

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const data = encoder.encode(text);
  let off = 0;
  try {
    while (off < data.length) off += file.writeSync(data.subarray(off));
  } catch {
    // A closed standard error must not turn a warning into a crash.
  }
}

function appendMaillog(line: string): void {
  try {
    if (!maillog) {
      maillog = Deno.openSync(settings.maillogFile, { append: true, create: true });
      maillogPath = settings.maillogFile;
    }
    writeAll(maillog, line);
  } catch (err) {
    maillog = undefined;
    if (!settings.stderr) {
      writeAll(Deno.stderr, `${settings.program}: warning: open ${settings.maillogFile}: ${err}\n`);
    }
  }
}

/** msg_info: an ordinary log line. */
export function info(text: string): void {
  emit("", text);
}

/** msg_info when verbose: Postfix's -v lines. */
export function debug(text: string): void {
  if (settings.verbose > 0) emit("", text);
}

/** msg_warn: `warning: text`. */
export function warn(text: string): void {
  emit("warning", text);
}

/** msg_error: `error: text`. */
export function error(text: string): void {
  emit("error", text);
}

/** Logs a `fatal:` or `panic:` line without exiting (postlog -p fatal). */
export function panicNoExit(level: "fatal" | "panic", text: string): void {
  emit(level, text);
}

/** msg_fatal: logs `fatal: text` and throws FatalError (mod.ts exits 1). */
export function fatal(text: string): never {
  emit("fatal", text);
  throw new FatalError(text);
}

/** msg_panic: logs `panic: text` and throws FatalError. */
export function panic(text: string): never {
  emit("panic", text);
  throw new FatalError(text);
}
