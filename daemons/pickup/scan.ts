// One pass over the maildrop queue, as Postfix's pickup(8) makes on each
// wakeup: every complete file (owner execute bit) is checked (a regular
// file with one link, records a local submitter may write) and copied to
// cleanup with the Received header naming the submitting uid; the file is
// removed only after cleanup has queued the message (or refused it for
// good). The submitter is the file's owner: the maildrop is sticky and
// world-writable, so the owner uid is the one fact a user cannot forge.

import { info, warn } from "../../lib/log.ts";
import { isQueueId } from "../../lib/queue/id.ts";
import { describe } from "../../lib/queue/file.ts";
import {
  decodeRecordAt,
  postdropAllowed,
  RecordError,
  RecordType,
} from "../../lib/queue/record.ts";
import { submitterAttributes } from "../../lib/queue/maildrop.ts";
import { CleanupClient } from "../../lib/cleanup_client.ts";
import { rfc822Date } from "../../lib/dsn/report.ts";

/** What a scan needs. */
export interface PickupEnv {
  /** The maildrop folder. */
  maildrop: string;
  /** The cleanup service socket (public/cleanup, as Postfix clients use it). */
  cleanupSocket: string;
  /** Request flags for cleanup (receive_override_options). */
  flags: number;
  myhostname: string;
  mailName: string;
  /** line_length_limit: the longest record a maildrop file may hold. */
  lineLengthLimit: number;
  /**
   * authorized_submit_users for a submitter's uid (root and mail_owner are
   * trusted). sendmail and postdrop check it too, but a local user can write
   * into the sticky maildrop directly; absent: everyone may submit.
   */
  maySubmit?: (uid: number) => Promise<{ ok: boolean; login: string }>;
}

/** What became of one maildrop file. */
export type Outcome = "queued" | "kept" | "removed";

const dec = new TextDecoder();
/** Scans the maildrop once; returns how many messages were queued. */
export async function scanMaildrop(env: PickupEnv): Promise<number> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(env.maildrop)].map((e) => e.name).sort();
  } catch (err) {
    warn(`scan_dir_push: open directory ${env.maildrop}: ${(err as Error).message}`);
    return 0;
  }
  let queued = 0;
  for (const name of names) {
    // Temporary names (usec.pid) and strays are not queue files.
    if (!isQueueId(name)) continue;
    if (await pickupFile(env, name) === "queued") queued++;
  }
  return queued;
}

/** Removes a maildrop file; a vanished file is fine. */
function remove(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) warn(`remove ${path}: ${(err as Error).message}`);
  }
}

/** Checks and copies one maildrop file. */
export async function pickupFile(env: PickupEnv, name: string): Promise<Outcome> {
  const path = `${env.maildrop}/${name}`;
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch {
    return "kept"; // Gone already (another pickup, postsuper).
  }
  const uid = st.uid ?? -1;
  if (!st.isFile) {
    warn(`${name}: uid ${uid}: not a regular file`);
    remove(path);
    return "removed";
  }
  // Without the execute bit the submitter is still writing it.
  if (((st.mode ?? 0) & 0o100) === 0) return "kept";
  if ((st.nlink ?? 1) > 1) {
    warn(`${name}: uid ${uid}: file has ${st.nlink} links`);
    remove(path);
    return "removed";
  }
  if (env.maySubmit) {
    let verdict;
    try {
      verdict = await env.maySubmit(uid);
    } catch (err) {
      // A table that cannot be read: try again on the next scan.
      warn(`authorized_submit_users: ${(err as Error).message}`);
      return "kept";
    }
    if (!verdict.ok) {
      warn(`${name}: uid=${uid}: User ${verdict.login}(${uid}) is not allowed to submit mail`);
      remove(path);
      return "removed";
    }
  }
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(path);
  } catch (err) {
    warn(`open ${path}: ${(err as Error).message}`);
    return "kept";
  }
  return await copyToCleanup(env, name, path, data, uid, st.mtime ?? new Date());
}

/** A file pickup refuses: it is removed, with the warnings in `lines`. */
class Refused extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join("; "));
  }
}

/** Streams the file's records to cleanup; removes the file when cleanup is done with it. */
async function copyToCleanup(
  env: PickupEnv,
  name: string,
  path: string,
  data: Uint8Array,
  uid: number,
  mtime: Date,
): Promise<Outcome> {
  let client: CleanupClient;
  try {
    client = await CleanupClient.open(env.cleanupSocket, env.flags);
  } catch (err) {
    // Postfix's wording names the service by its place under the queue directory.
    const where = env.cleanupSocket.split("/").slice(-2).join("/");
    warn(`connect to subsystem ${where}: ${describe(err)}`);
    return "kept";
  }
  const id = client.queueId;
  try {
    await sendRecords(env, client, data, uid, mtime, id, `maildrop/${name}`);
  } catch (err) {
    client.close();
    if (err instanceof Refused) {
      for (const line of err.lines) warn(line);
      remove(path);
      return "removed";
    }
    warn(`${id}: ${(err as Error).message}`);
    return "kept";
  }
  let reply;
  try {
    reply = await client.finish();
  } catch (err) {
    warn(`${id}: ${(err as Error).message}`);
    return "kept";
  } finally {
    client.close();
  }
  if (reply.status === 0) {
    remove(path);
    return "queued";
  }
  const text = reply.reason.replace(/^[245]\.\d+\.\d+ /, "");
  warn(`maildrop/${name}: error writing ${id}: ${text}`);
  // A temporary failure is retried on the next scan; a permanent refusal
  // cannot succeed later. cleanup bounces what it refuses for good (the
  // BOUNCE request flag) and reports success; a refusal reaching here is
  // one it could not bounce, and the log line is its only record, as with
  // Postfix's pickup.
  if (reply.reason.startsWith("4")) return "kept";
  remove(path);
  return "removed";
}

/** Sends the file's records, checked against what a local submitter may write. */
async function sendRecords(
  env: PickupEnv,
  client: CleanupClient,
  data: Uint8Array,
  uid: number,
  mtime: Date,
  id: string,
  where: string,
): Promise<void> {
  let segment: "envelope" | "content" | "extracted" = "envelope";
  let at = 0;
  let first = true;
  for (;;) {
    let got;
    const malformed = `uid=${uid}: unexpected or malformed record type -2`;
    try {
      got = decodeRecordAt(data, at);
    } catch (err) {
      if (err instanceof RecordError) throw new Refused([`${where}: ${err.message}`, malformed]);
      throw err;
    }
    if (!got) throw new Refused([`${where}: premature end of file`, malformed]);
    at = got.next;
    const { type, data: body } = got.record;
    // Postfix reads maildrop records with line_length_limit as their bound.
    if (body.length > env.lineLengthLimit) {
      throw new Refused([
        `${where}: illegal length ${body.length}, record type ${type.charCodeAt(0)}`,
        malformed,
      ]);
    }
    const allowed = segment === "envelope"
      ? postdropAllowed.envelope + (first ? RecordType.TIME : "")
      : segment === "content"
      ? postdropAllowed.content
      : postdropAllowed.extracted;
    first = false;
    if (!allowed.includes(type)) {
      throw new Refused([`${id}: uid=${uid}: unexpected record type: ${type.charCodeAt(0)}`]);
    }
    if (type === RecordType.ATTR) {
      const text = dec.decode(body);
      const eq = text.indexOf("=");
      if (eq <= 0 || !submitterAttributes.has(text.slice(0, eq))) {
        warn(`${id}: uid=${uid}: ignoring attribute record: ${text.slice(0, 200)}`);
        continue;
      }
    }
    if (type === RecordType.FROM) info(`${id}: uid=${uid} from=<${dec.decode(body)}>`);
    await client.record(type, body);
    if (type === RecordType.MESG) {
      segment = "content";
      await client.record(
        RecordType.NORM,
        `Received: by ${env.myhostname} (${env.mailName}, from userid ${uid})`,
      );
      await client.record(RecordType.NORM, `\tid ${id}; ${rfc822Date(mtime)}`);
    } else if (type === RecordType.XTRA) {
      segment = "extracted";
    } else if (type === RecordType.END) {
      return;
    }
  }
}
