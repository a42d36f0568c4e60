// postdrop: local mail posting, as postdrop(1).
//
// Reads a record stream on standard input (what Postfix's sendmail writes:
// envelope M F S R V A i n, content X L N, extracted E A R), checks that
// only those records appear, writes them after an arrival-time record into
// a new maildrop queue file, commits it (fsync, then the execute bit) when
// the end record arrives, and wakes pickup. A stream that stops between
// records cancels the submission quietly (sendmail was interrupted); a
// stream that stops inside a record, or holds a record a submitter may not
// write, is refused. Either way no file is left behind. The submitter's
// identity is the file's owner (docs/SECURITY.md, "Local submission").

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, fatal, warn } from "../lib/log.ts";
import { type Config, loadConfig, setupLogging } from "../lib/config/mod.ts";
import {
  checkSubmitter,
  layoutFromConfig,
  MaildropWriter,
  MessageTooLarge,
  QueueFileError,
  RecordError,
  RecordStreamDecoder,
  SubmissionError,
} from "../lib/queue/mod.ts";
import { sendTrigger, TRIGGER_WAKEUP } from "../lib/ipc/trigger.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage = "usage: postdrop [-c config_dir] [-r] [-v]";

/** postdrop [-rv] [-c config_dir] */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  let opts;
  try {
    opts = getopt(args, "c:rv");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  let configDir: string | undefined;
  let verbose = 0;
  for (const { flag, arg } of opts.options) {
    if (flag === "c") configDir = arg;
    else if (flag === "v") verbose++;
  }
  if (opts.operands.length) fatal(usage);
  const config = loadConfig({ configDir, program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose });
  const uid = Deno.uid() ?? 0;
  await checkSubmitter(
    config.list("authorized_submit_users"),
    uid,
    (spec) => openTable(spec, config),
  );
  const writer = openMaildrop(config, uid);
  // Postfix's postdrop protocol: the queue id first, the status at the end.
  writeAttributes([["protocol", "postdrop_protocol"], ["queue_id", writer.id]]);
  const finished = await copyStream(writer, uid);
  if (!finished) return 0;
  writeAttributes([["status", "0"], ["reason", ""]]);
  await wakePickup(config);
  return 0;
}

function openMaildrop(config: Config, uid: number): MaildropWriter {
  try {
    return new MaildropWriter(layoutFromConfig(config), {
      longIds: config.bool("enable_long_queue_ids"),
      sizeLimit: config.int("message_size_limit"),
      onIgnored: (text) => warn(`uid=${uid}: ${text}`),
    });
  } catch (err) {
    if (err instanceof QueueFileError) fatal(`uid=${uid}: ${err.message}`);
    throw err;
  }
}

/**
 * Copies records from standard input into the writer; true when the file
 * was committed, false when the stream ended early between records.
 */
async function copyStream(writer: MaildropWriter, uid: number): Promise<boolean> {
  const decoder = new RecordStreamDecoder();
  try {
    const buf = new Uint8Array(1 << 16);
    for (let n = await Deno.stdin.read(buf); n !== null; n = await Deno.stdin.read(buf)) {
      for (const record of decoder.push(buf.subarray(0, n))) {
        if (writer.ended) {
          throw new SubmissionError(`unexpected record type: ${record.type.charCodeAt(0)}`);
        }
        writer.add(record.type, record.data);
      }
      if (writer.ended) break;
    }
    if (!writer.ended) {
      decoder.end();
      writer.abandon();
      return false;
    }
    writer.commit();
    return true;
  } catch (err) {
    writer.abandon();
    if (err instanceof SubmissionError) fatal(`uid=${uid}: ${err.message}`);
    if (err instanceof MessageTooLarge) fatal(`uid=${uid}: File too large`);
    if (err instanceof RecordError) {
      warn(`stdin: ${err.message}`);
      fatal(`uid=${uid}: malformed input`);
    }
    throw err;
  }
}

/** One attribute list in Postfix's default encoding: name NUL value NUL ..., then NUL. */
function writeAttributes(pairs: [string, string][]): void {
  const text = pairs.map(([k, v]) => `${k}\0${v}\0`).join("") + "\0";
  const data = new TextEncoder().encode(text);
  let at = 0;
  try {
    while (at < data.length) at += Deno.stdout.writeSync(data.subarray(at));
  } catch {
    // Nobody reads the reply (a script, not sendmail): the file is queued all the same.
  }
}

async function wakePickup(config: Config): Promise<void> {
  const path = `${config.get("queue_directory")}/public/${config.get("pickup_service_name")}`;
  try {
    await sendTrigger(path, TRIGGER_WAKEUP, 1000 * config.time("trigger_timeout"));
  } catch {
    // Pickup is down: the file waits in maildrop, as in Postfix.
  }
}

/** Opens a lookup table (maps/ is loaded only when a list names a table). */
async function openTable(spec: string, config: Config) {
  return (await import("../maps/mod.ts")).openMap(spec, { config });
}
