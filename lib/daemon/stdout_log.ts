// Logging to an inherited standard output (maillog_file = /dev/stdout), for
// the master and every daemon: no reopening of /dev/stdout.

import { captureLog, formatLogLine, logSettings } from "../log.ts";

/**
 * maillog_file = /dev/stdout (containers, start-fg): reopening /dev/stdout
 * fails for a daemon running as mail_owner when the descriptor is a pipe
 * the root master inherited, so lines go to the inherited descriptor itself.
 */
export function logToInheritedStdout(maillogFile: string): void {
  const target = maillogFile === "/dev/stdout"
    ? Deno.stdout
    : maillogFile === "/dev/stderr"
    ? Deno.stderr
    : undefined;
  if (!target) return;
  const stderr = logSettings().stderr;
  captureLog((body) => {
    const line = new TextEncoder().encode(formatLogLine(body) + "\n");
    try {
      target.writeSync(line);
      if (stderr && target !== Deno.stderr) {
        Deno.stderr.writeSync(new TextEncoder().encode(`${logSettings().program}: ${body}\n`));
      }
    } catch {
      // A closed standard output must not turn a log line into a crash.
    }
  });
}
