// postsuper: queue maintenance for the super-user, as Postfix's postsuper(1).
//
// Deletes (-d), holds (-h), releases (-H), requeues (-r) and force-expires
// (-e, -f) messages by queue id, ALL, or ids read from standard input (-),
// checks and repairs the queue's structure (-s, -S) and purges left-over
// temporary files (-p). It works on the files directly and is safe while
// the mail system runs: every step is one rename, unlink or chmod, and a
// file that another process moved or removed first is simply not counted.

import { getopt, GetoptError } from "../lib/getopt.ts";
import { configureLog, debug, fatal, info, warn } from "../lib/log.ts";
import { type Config, loadConfig, setupLogging } from "../lib/config/mod.ts";
import {
  describe,
  hashedSubdir,
  isLongQueueId,
  isQueueId,
  layoutFromConfig,
  longQueueId,
  MaildropWriter,
  parseQueueId,
  queueFilePath,
  type QueueLayout,
  queuePath,
  RecordReader,
  RecordType,
  shortQueueId,
} from "../lib/queue/mod.ts";
import type { ProgramContext } from "../lib/program.ts";

const usage = "usage: postsuper [-c config_dir] [-d queue_id (delete)] " +
  "[-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] " +
  "[-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] " +
  "[-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]";

/** Queues holding message files, and the per-message log queues. */
const messageDirs = ["maildrop", "incoming", "active", "deferred", "hold"];
const logDirs = ["bounce", "defer", "trace", "flush"];
/** The logs kept per message. */
const perMessageLogs = ["bounce", "defer", "trace"];

/** The group execute bit: the message is to be returned as expired (postsuper -e/-f). */
const expireBit = 0o010;

/** A temporary file older than this is left over from a crash (-p). */
const tempFileAge = 7 * 24 * 3600 * 1000;

type Op = "d" | "e" | "f" | "h" | "H" | "r";

/** Each operation's default source queues, as the manual lists them. */
const defaultQueues: Record<Op, string[]> = {
  d: ["hold", "incoming", "active", "deferred"],
  e: ["hold", "incoming", "active", "deferred"],
  f: ["hold", "incoming", "active", "deferred"],
  h: ["incoming", "active", "deferred"],
  H: ["hold"],
  r: ["hold", "incoming", "active", "deferred"],
};

interface Counts {
  deleted: number;
  expired: number;
  held: number;
  released: number;
  requeued: number;
  renamed: number;
}

interface Job {
  /** Per-message lines are logged for named ids, not for ALL (as Postfix). */
  quiet: boolean;
  /** -d ALL: log files are wiped by folder afterwards, not per message. */
  allLogs: boolean;
  layout: QueueLayout;
  config: Config;
  counts: Counts;
  verbose: number;
}

/** Postfix's queue-id syntax test (letters and digits); anything else gets a warning. */
function queueIdOk(id: string): boolean {
  return id.length > 0 && id.length <= 100 && /^[A-Za-z0-9]+$/.test(id);
}

function plural(n: number): string {
  return `${n} message${n === 1 ? "" : "s"}`;
}

/** postsuper [-psSv] [-c dir] [-d id] [-e id] [-f id] [-h id] [-H id] [-r id] [queue ...] */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name, stderr: true });
  let opts;
  try {
    opts = getopt(args, "c:d:e:f:h:H:pr:sSv");
  } catch (err) {
    if (!(err instanceof GetoptError)) throw err;
    console.error(`${ctx.name}: ${err.message}`);
    fatal(usage);
  }
  let configDir: string | undefined;
  let verbose = 0;
  const ops: { op: Op; id: string }[] = [];
  const flags = new Set<string>();
  for (const { flag, arg = "" } of opts.options) {
    if (flag === "c") configDir = arg;
    else if (flag === "v") verbose++;
    else if ("defhHr".includes(flag)) ops.push({ op: flag as Op, id: arg });
    else flags.add(flag);
  }
  const config = loadConfig({ configDir, program: ctx.name });
  setupLogging(config, ctx.name, { stderr: true, verbose });
  const layout = layoutFromConfig(config);
  if (!maySupervise(layout)) fatal("use of this command is reserved for the superuser");
  for (const name of opts.operands) {
    if (!messageDirs.includes(name) && !logDirs.includes(name)) {
      fatal(`invalid directory name: ${name}`);
    }
  }
  const job: Job = {
    layout,
    config,
    verbose,
    quiet: false,
    allLogs: false,
    counts: { deleted: 0, expired: 0, held: 0, released: 0, requeued: 0, renamed: 0 },
  };
  // With no operation at all, postsuper checks the structure and purges (Postfix's default).
  const bare = ops.length === 0 && flags.size === 0;
  const structure = flags.has("s") || flags.has("S") || bare;
  const purge = flags.has("p") || bare;
  if (structure || purge) {
    checkTree(job, { structure, strict: flags.has("S"), purge }, opts.operands);
    if (job.counts.renamed) {
      info(`Renamed to match inode number: ${plural(job.counts.renamed)}`);
      warn("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
    }
  }
  for (const { op, id } of ops) {
    const queues = opts.operands.length ? opts.operands : defaultQueues[op];
    if (id === "-") await forEachStdinId((each) => operate(job, op, each, queues));
    else if (id === "ALL") {
      operateAll({ ...job, quiet: true, allLogs: true }, op, queues);
      // As Postfix: -d ALL empties the log folders in scope (all of them by default).
      if (op === "d") {
        const logs = opts.operands.length ? opts.operands : perMessageLogs;
        for (const q of logs.filter((q) => perMessageLogs.includes(q))) wipe(job, q);
      }
    } else operate(job, op, id, queues);
  }
  report(job.counts, new Set(ops.map((o) => o.op)));
  return 0;
}

/** The super-user, or in a self-contained instance the user who owns the queue. */
function maySupervise(layout: QueueLayout): boolean {
  const uid = Deno.uid();
  if (uid === 0 || uid === null) return true;
  try {
    return Deno.statSync(layout.queueDirectory).uid === uid;
  } catch {
    return false;
  }
}

/** The summary lines, one per operation requested, with Postfix's wording. */
function report(counts: Counts, ops: Set<Op>): void {
  if (ops.has("d")) info(`Deleted: ${plural(counts.deleted)}`);
  if (ops.has("e") || ops.has("f")) info(`Force-expired: ${plural(counts.expired)}`);
  if (ops.has("h")) info(`Placed on hold: ${plural(counts.held)}`);
  if (ops.has("H") || ops.has("f")) {
    info(`Released from hold: ${plural(counts.released)}`);
  }
  if (ops.has("r")) info(`Requeued: ${plural(counts.requeued)}`);
}

/** Calls `fn` for each queue id on standard input, one per line (blank lines skipped). */
async function forEachStdinId(fn: (id: string) => void): Promise<void> {
  const text = await new Response(Deno.stdin.readable).text();
  for (const line of text.split("\n")) {
    const id = line.trim();
    if (id) fn(id);
  }
}

/** One operation on every message of the named queues. */
function operateAll(job: Job, op: Op, queues: string[]): void {
  // A message moved by this pass (-f from hold to deferred) is not met again.
  const done = new Set<string>();
  for (const queue of new Set(queues)) {
    if (!messageDirs.includes(queue)) continue;
    for (const { id } of walk(queuePath(job.layout, queue))) {
      if (queueIdOk(id) && !done.has(id) && operateOne(job, op, id, queue)) done.add(id);
    }
  }
}

/** One operation on one queue id, in each of the named queues where it is. */
function operate(job: Job, op: Op, id: string, queues: string[]): void {
  if (!queueIdOk(id)) {
    warn(`invalid mail queue id: ${id}`);
    return;
  }
  for (const queue of new Set(queues)) {
    if (messageDirs.includes(queue) && operateOne(job, op, id, queue)) return;
  }
}

/** Carries out `op` on message `id` in `queue`; false when it is not there (not an error). */
function operateOne(job: Job, op: Op, id: string, queue: string): boolean {
  const path = queueFilePath(job.layout, queue, id);
  // A file still being written (no owner execute bit yet) is left to its
  // writer: moving or marking it would break the writer's commit.
  if (op !== "d" && !isComplete(path)) return false;
  switch (op) {
    case "d":
      if (!unlinkIfThere(path)) return false;
      removeLogs(job, id);
      note(job, `${id}: removed`);
      job.counts.deleted++;
      return true;
    case "h":
      // Unsanitized (maildrop) mail cannot be held.
      if (queue === "hold" || queue === "maildrop") return false;
      if (!moveIfThere(job.layout, path, "hold", id)) return false;
      note(job, `${id}: placed on hold`);
      job.counts.held++;
      return true;
    case "H":
      if (queue !== "hold" || !moveIfThere(job.layout, path, "deferred", id)) return false;
      note(job, `${id}: released from hold`);
      job.counts.released++;
      return true;
    case "e":
    case "f": {
      if (queue === "maildrop") return false;
      const marked = expire(path);
      if (marked === "gone") return false;
      // A message already marked is not counted again.
      if (marked === "set") {
        note(job, `${id}: expired`);
        job.counts.expired++;
      }
      if (op === "f" && queue === "hold" && moveIfThere(job.layout, path, "deferred", id)) {
        note(job, `${id}: released from hold`);
        job.counts.released++;
      }
      return true;
    }
    case "r":
      if (queue === "maildrop" || !requeue(job, path, id)) return false;
      note(job, `${id}: requeued`);
      job.counts.requeued++;
      return true;
  }
}

/** Whether a queue file exists and is complete (owner execute bit). */
function isComplete(path: string): boolean {
  try {
    return ((Deno.lstatSync(path).mode ?? 0) & 0o100) !== 0;
  } catch {
    return false;
  }
}

/** A per-message line, unless the operation named ALL. */
function note(job: Job, text: string): void {
  if (!job.quiet) info(text);
}

function unlinkIfThere(path: string): boolean {
  try {
    Deno.removeSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    fatal(`remove file ${path}: ${(err as Error).message}`);
  }
}

/** Removes the message's bounce, defer and trace logs (not during -d ALL: see wipe()). */
function removeLogs(job: Job, id: string): void {
  if (job.allLogs) return;
  for (const log of perMessageLogs) unlinkIfThere(queueFilePath(job.layout, log, id));
}

/** Removes every log file of a log queue. */
function wipe(job: Job, queue: string): void {
  for (const { id, path } of walk(queuePath(job.layout, queue))) {
    if (queueIdOk(id)) unlinkIfThere(path);
  }
}

/** Renames a message file into `toQueue` (its hashed place there); false when it is gone. */
function moveIfThere(layout: QueueLayout, from: string, toQueue: string, id: string): boolean {
  return renameInto(layout, from, queueFilePath(layout, toQueue, id), toQueue, id);
}

function renameInto(
  layout: QueueLayout,
  from: string,
  to: string,
  toQueue: string,
  id: string,
): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      Deno.renameSync(from, to);
      return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        fatal(`rename ${from} to ${to}: ${(err as Error).message}`);
      }
      // Either the file is gone (someone else acted first) or the hash folder is missing.
      try {
        Deno.lstatSync(from);
      } catch {
        return false;
      }
      const sub = hashedSubdir(layout, toQueue, id);
      Deno.mkdirSync(`${queuePath(layout, toQueue)}/${sub}`, { recursive: true, mode: 0o700 });
    }
  }
  return false;
}

/** Sets the expire mark: "set", "already" (marked before) or "gone". */
function expire(path: string): "set" | "already" | "gone" {
  try {
    const mode = Deno.statSync(path).mode ?? 0o700;
    if (mode & expireBit) return "already";
    Deno.chmodSync(path, (mode & 0o7777) | expireBit);
    return "set";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "gone";
    fatal(`chmod ${path}: ${(err as Error).message}`);
  }
}

/** -r: a new maildrop submission from the message, then the old file and its logs go. */
function requeue(job: Job, path: string, id: string): boolean {
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    fatal(`open ${path}: ${(err as Error).message}`);
  }
  try {
    requeueToMaildrop(job.layout, data, { longIds: job.config.bool("enable_long_queue_ids") });
  } catch (err) {
    warn(`${id}: cannot requeue: ${(err as Error).message}`);
    return false;
  }
  if (!unlinkIfThere(path)) return true;
  removeLogs(job, id);
  return true;
}

/** Files under `dir`, entering one-character (hash) subdirectories at any depth. */
function* walk(dir: string, depth = 0): Generator<{ id: string; path: string; depth: number }> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    // A hash folder removed meanwhile (another postsuper -s) is no error; a queue folder is.
    if (depth > 0 && err instanceof Deno.errors.NotFound) return;
    const name = dir.slice(dir.lastIndexOf("/") + 1);
    fatal(`scan_dir_push: open directory ${name}: ${describe(err)}`);
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name.length === 1) yield* walk(path, depth + 1);
    else if (entry.isFile) yield { id: entry.name, path, depth };
  }
}

/** The queues -s and -p work on: the named ones, else all message and log queues. */
function structureQueues(named: string[]): string[] {
  return named.length ? named : [...messageDirs, ...logDirs];
}

/**
 * One pass over the queue tree for -s/-S and -p. A name that is not a queue
 * id is removed by -p when it is older than a week (a temporary file left by
 * a crash), else reported as bogus. -s renames message files whose name does
 * not match their inode (and long names to short ones when long ids are
 * off), moves files to where hash_queue_names/hash_queue_depth put them, and
 * removes hash folders no longer needed; -S checks the inode of long names too.
 */
function checkTree(
  job: Job,
  what: { structure: boolean; strict: boolean; purge: boolean },
  named: string[],
): void {
  const longIds = job.config.bool("enable_long_queue_ids");
  const now = Date.now();
  for (const queue of structureQueues(named)) {
    const isMessages = messageDirs.includes(queue);
    for (const { id, path } of walk(queuePath(job.layout, queue))) {
      // Here a name must have a queue id's exact form, short or long.
      if (!isQueueId(id)) {
        if (!(what.purge && isOld(path, now) && unlinkIfThere(path))) {
          warn(`bogus file name: ${path.slice(job.layout.queueDirectory.length + 1)}`);
        }
        continue;
      }
      if (!what.structure) continue;
      if (isMessages) {
        const fixed = nameForInode(path, id, longIds, what.strict);
        if (fixed && fixed !== id) {
          if (renameMessage(job, queue, path, id, fixed)) {
            if (job.verbose) debug(`${id}: renamed to ${fixed}`);
            job.counts.renamed++;
          }
          continue;
        }
      }
      const want = queueFilePath(job.layout, queue, id);
      if (want !== path && renameInto(job.layout, path, want, queue, id) && job.verbose) {
        debug(`moved ${path} to ${want}`);
      }
    }
    if (what.structure) removeStaleHashDirs(job.layout, queue);
  }
}

/** Whether a file was last changed more than a week ago. */
function isOld(path: string, now: number): boolean {
  try {
    return now - (Deno.lstatSync(path).mtime?.getTime() ?? now) >= tempFileAge;
  } catch {
    return false;
  }
}

/** The name a file should have for its inode; null when the name cannot be checked. */
function nameForInode(path: string, id: string, longIds: boolean, strict: boolean): string | null {
  const parts = parseQueueId(id);
  if (!parts) return null;
  let inode: number;
  try {
    inode = Deno.lstatSync(path).ino ?? 0;
  } catch {
    return null;
  }
  if (isLongQueueId(id)) {
    if (!longIds) return shortQueueId(parts.usec, inode);
    if (!strict || parts.inode === inode) return id;
    return longQueueId(parts.seconds ?? 0, parts.usec, inode);
  }
  return parts.inode === inode ? id : shortQueueId(parts.usec, inode);
}

/** Renames a message and its logs to `to`, refusing to overwrite a message of that name. */
function renameMessage(job: Job, queue: string, path: string, from: string, to: string): boolean {
  const target = queueFilePath(job.layout, queue, to);
  try {
    Deno.lstatSync(target);
    warn(`${from}: cannot rename to ${to}: a message of that name exists`);
    return false;
  } catch {
    // Free: go on.
  }
  if (!renameInto(job.layout, path, target, queue, to)) return false;
  for (const log of ["bounce", "defer", "trace"]) {
    renameInto(
      job.layout,
      queueFilePath(job.layout, log, from),
      queueFilePath(job.layout, log, to),
      log,
      to,
    );
  }
  return true;
}

/** Removes empty hash folders the current settings do not use (after a layout change). */
function removeStaleHashDirs(layout: QueueLayout, queue: string): void {
  const hashed = queue !== "maildrop" && layout.hashQueueNames.includes(queue);
  const depth = hashed ? layout.hashQueueDepth : 0;
  const prune = (dir: string, level: number): void => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory || e.name.length !== 1) continue;
      const sub = `${dir}/${e.name}`;
      prune(sub, level + 1);
      if (level + 1 > depth) {
        try {
          Deno.removeSync(sub); // Only succeeds when empty.
        } catch {
          // Not empty (a file being moved in), or gone.
        }
      }
    }
  };
  prune(queuePath(layout, queue), 0);
}

/** Records a requeued message keeps: what a local submission may carry, by segment. */
const keep = { envelope: "FSRA", content: "NL", extracted: "AR" };

/**
 * Writes the message back into maildrop as a local submission (sender, full
 * name, pending recipients, DSN attributes, content, header-extracted
 * recipients), so pickup and cleanup process it anew, as Postfix's -r does.
 */
function requeueToMaildrop(
  layout: QueueLayout,
  data: Uint8Array,
  options: { longIds: boolean },
): void {
  const writer = new MaildropWriter(layout, { longIds: options.longIds });
  try {
    const reader = new RecordReader(data);
    let segment: keyof typeof keep = "envelope";
    for (let rec = reader.next(); rec; rec = reader.next()) {
      if (rec.type === RecordType.MESG || rec.type === RecordType.XTRA) {
        writer.add(rec.type);
        segment = rec.type === RecordType.MESG ? "content" : "extracted";
      } else if (rec.type === RecordType.END) {
        break;
      } else if (keep[segment].includes(rec.type)) {
        if (segment === "content") writer.addText(rec.type as "N" | "L", rec.data);
        else writer.add(rec.type, rec.data);
      }
    }
    if (segment !== "extracted") throw new Error("no message content");
    writer.add(RecordType.END);
    writer.commit();
  } catch (err) {
    writer.abandon();
    throw err;
  }
}
