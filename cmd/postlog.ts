// postlog: Postfix-compatible logging for shell scripts, as postlog(1).
//
// Logs the text given on the command line as one record, or each line of
// standard input as one record, under the tag syslog_name/postlog (or -t).
// Logging goes to maillog_file when set; standard error gets a copy when it
// is a terminal, as in Postfix.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, error, fatal, info, panicNoExit, warn } from "../lib/log.ts";
import { loadConfig, setupLogging } from "../lib/config/mod.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage = "usage: postlog [-c config_dir] [-i] [-p priority] [-t tag] [-v] [text]";

type Severity = "info" | "warn" | "error" | "fatal" | "panic";
const severities: Severity[] = ["info", "warn", "error", "fatal", "panic"];

/** postlog [-iv] [-c config_dir] [-p priority] [-t tag] [text...] */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  let opts;
  try {
    opts = getopt(args, "c:ip:t:v");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  let configDir: string | undefined;
  let severity = "info";
  let tag: string | undefined;
  let verbose = 0;
  for (const { flag, arg } of opts.options) {
    if (flag === "c") configDir = arg;
    else if (flag === "p") severity = arg!;
    else if (flag === "t") tag = arg;
    else if (flag === "v") verbose++;
  }
  const config = loadConfig({ configDir, program: "postlog" });
  checkMaillogFile(config.get("maillog_file"), config.list("maillog_file_prefixes"));
  setupLogging(config, "postlog", { stderr: Deno.stderr.isTerminal(), verbose });
  const syslogTag = tag ?? `${config.get("syslog_name") || "postfix"}/postlog`;
  configureLog({ tag: syslogTag, stderrTag: syslogTag });
  if (!severities.includes(severity as Severity)) fatal(`bad severity: "${severity}"`);

  const records = opts.operands.length > 0 ? [opts.operands.join(" ")] : await stdinLines();
  for (const text of records) record(severity as Severity, text);
  // Postfix pauses a second after reporting a fatal or panic condition.
  if (severity === "fatal" || severity === "panic") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return 0;
}

function record(severity: Severity, text: string): void {
  switch (severity) {
    case "info":
      return info(text);
    case "warn":
      return warn(text);
    case "error":
      return error(text);
    default:
      // postlog reports fatal and panic conditions but goes on and exits 0.
      return panicNoExit(severity, text);
  }
}

/** Postfix refuses a maillog_file outside maillog_file_prefixes. */
function checkMaillogFile(file: string, prefixes: string[]): void {
  if (!file) return;
  if (!prefixes.some((prefix) => file.startsWith(prefix))) {
    fatal(`maillog_file value '${file}' does not match any prefix in maillog_file_prefixes`);
  }
}

async function stdinLines(): Promise<string[]> {
  const text = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer());
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => line.replace(/\r$/, ""));
}
