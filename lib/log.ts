// Postfix-style logging: msg_info, msg_warn, msg_error, msg_fatal, msg_panic.
//
// Lines go to maillog_file as Postfix's postlogd writes them
// (`Mon DD HH:MM:SS host syslog_name/program[pid]: text`), and to standard
// error as `program: warning: text` for commands. Writes are synchronous and
// appended with O_APPEND, so concurrent processes never interleave a line.
// Without maillog_file, lines go to syslog as Postfix's do: one datagram
// each to /dev/log, `<PRI>Mmm dd HH:MM:SS syslog_name/program[pid]: text`,
// with syslog_facility and the level's severity (info, warning, err, crit).

import { closeFd, connectDatagram, writeFd } from "./ffi/libc.ts";

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
  /** syslog_facility; lines go to syslog when there is no maillog_file. */
  facility: string;
  /** The syslog socket; "" turns syslog off. */
  syslogPath: string;
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
  facility: "mail",
  syslogPath: "",
};

const encoder = new TextEncoder();
let maillog: Deno.FsFile | undefined;
let maillogPath = "";
let sink: ((line: string) => void) | undefined;
let syslogFd = -1;
let syslogFdPath = "";
/** When the syslog socket last failed: it is tried again after a pause, not per line. */
let syslogFailedAt = -Infinity;

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
  } else if (settings.syslogPath) {
    sendSyslog(level, body);
  }
}

/** syslog(3) facility codes by syslog_facility name. */
const facilities: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** Whether `name` is a syslog_facility value Postfix accepts. */
export function isSyslogFacility(name: string): boolean {
  return Object.hasOwn(facilities, name.toLowerCase());
}

/** Severity by level: fatal and panic are LOG_CRIT, as Postfix logs them. */
function severity(level: string): number {
  if (level === "warning") return 4;
  if (level === "error") return 3;
  if (level === "fatal" || level === "panic") return 2;
  return 6;
}

/** The syslog datagram for one line: `<PRI>Nov  4 09:05:01 tag[pid]: text`. */
export function formatSyslogMessage(level: string, text: string, when = new Date()): string {
  const facility = facilities[settings.facility.toLowerCase()] ?? facilities.mail;
  const month = months[when.getMonth()];
  const day = String(when.getDate()).padStart(2, " ");
  const time = [when.getHours(), when.getMinutes(), when.getSeconds()]
    .map((n) => String(n).padStart(2, "0")).join(":");
  const tag = settings.tag || `${settings.syslogName}/${settings.program}`;
  return `<${facility * 8 + severity(level)}>${month} ${day} ${time} ${tag}[${Deno.pid}]: ${text}`;
}

function sendSyslog(level: string, body: string): void {
  if (
    syslogFd < 0 && Date.now() - syslogFailedAt < 10_000 && syslogFdPath === settings.syslogPath
  ) {
    return;
  }
  try {
    if (syslogFd < 0 || syslogFdPath !== settings.syslogPath) {
      if (syslogFd >= 0) closeFd(syslogFd);
      syslogFd = -1;
      syslogFd = connectDatagram(settings.syslogPath);
      syslogFdPath = settings.syslogPath;
    }
    if (writeFd(syslogFd, encoder.encode(formatSyslogMessage(level, body))) < 0) {
      // A full syslog socket drops the line, as syslog(3) does.
    }
  } catch {
    // No syslog daemon (or it went away): the line is lost, as with syslog(3).
    if (syslogFd >= 0) closeFd(syslogFd);
    syslogFd = -1;
    syslogFdPath = settings.syslogPath;
    syslogFailedAt = Date.now();
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
