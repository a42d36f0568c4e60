// The cleanup service protocol, between a client (pickup, smtpd, qmqpd,
// bounce) and cleanup over private/cleanup or public/cleanup, in attribute
// lists (lib/ipc/attr.ts) and queue-file records (lib/queue/record.ts):
//
//   server: protocol=cleanup          client: flags=N
//   server: queue_id=ID               client: records ... E
//   server: status=N reason=TEXT
//
// The server creates the queue file in incoming before it names the queue
// id, runs the core, and replies only after the file is fsynced and marked
// complete (or removed, on any error), so nothing acknowledged is lost and
// nothing half-written looks complete.

import type * as net from "node:net";
import { decodeAttrs, encodeAttrs } from "../../lib/ipc/attr.ts";
import { sendTrigger, TRIGGER_WAKEUP } from "../../lib/ipc/trigger.ts";
import {
  abandonQueueFile,
  commitQueueFile,
  createQueueFile,
  describe,
  type NewQueueFile,
  writeAllSync,
} from "../../lib/queue/file.ts";
import {
  hashedSubdir,
  queueFilePath,
  type QueueLayout,
  queuePath,
} from "../../lib/queue/layout.ts";
import { decodeRecordAt, RecordError, RecordType } from "../../lib/queue/record.ts";
import { info, warn } from "../../lib/log.ts";
import { type InputRecord, processMessage } from "./core.ts";
import type { CleanupSettings } from "./settings.ts";
import { CleanupStat } from "./status.ts";
import type { CleanupTables } from "./tables.ts";

/** What the service needs besides the connection. */
export interface ServiceEnv {
  layout: QueueLayout;
  /** queue_service_name: the queue manager's public trigger (qmgr). */
  queueService: string;
  longIds: boolean;
  settings: CleanupSettings;
  tables: CleanupTables;
}

/** Reads a connection as a queue of byte chunks, ending at EOF. */
class ConnReader {
  private chunks: Uint8Array[] = [];
  private waiting: (() => void) | undefined;
  ended = false;

  constructor(conn: net.Socket) {
    conn.on("data", (b: Uint8Array) => {
      this.chunks.push(new Uint8Array(b));
      this.waiting?.();
    });
    const end = () => {
      this.ended = true;
      this.waiting?.();
    };
    conn.on("end", end);
    conn.on("close", end);
    conn.on("error", end);
  }

  /** The next chunk, or null at EOF. */
  async next(): Promise<Uint8Array | null> {
    while (this.chunks.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => this.waiting = resolve);
      this.waiting = undefined;
    }
    return this.chunks.shift() ?? null;
  }

  /** Gives back bytes read past what the caller needed. */
  unshift(chunk: Uint8Array): void {
    if (chunk.length) this.chunks.unshift(chunk);
  }
}

/**
 * Reads exactly one attribute list; null at EOF. Bytes after the list (the
 * record stream) go back to the reader untouched.
 */
async function readAttrs(reader: ConnReader): Promise<Map<string, string> | null> {
  let buf: Uint8Array = new Uint8Array(0);
  for (;;) {
    const chunk = await reader.next();
    if (!chunk) return null;
    const merged = new Uint8Array(buf.length + chunk.length);
    merged.set(buf);
    merged.set(chunk, buf.length);
    buf = merged;
    const end = listEnd(buf);
    if (end < 0) continue;
    reader.unshift(buf.subarray(end));
    return decodeAttrs(buf.subarray(0, end));
  }
}

/** The offset just past the first complete list (name/value pairs, then an empty name), or -1. */
function listEnd(data: Uint8Array): number {
  let at = 0;
  for (;;) {
    const nameEnd = data.indexOf(0, at);
    if (nameEnd < 0) return -1;
    if (nameEnd === at) return at + 1;
    const valueEnd = data.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return -1;
    at = valueEnd + 1;
  }
}

/** Yields the records of the stream until E or EOF. */
async function* readRecords(reader: ConnReader): AsyncGenerator<InputRecord> {
  let buf: Uint8Array = new Uint8Array(0);
  for (;;) {
    let at = 0;
    for (;;) {
      let got;
      try {
        got = decodeRecordAt(buf, at);
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        break; // An incomplete record: wait for more bytes.
      }
      if (!got) break;
      at = got.next;
      yield { type: got.record.type, data: got.record.data.slice() };
      if (got.record.type === RecordType.END) return;
    }
    buf = buf.subarray(at);
    const chunk = await reader.next();
    if (!chunk) return;
    const merged = new Uint8Array(buf.length + chunk.length);
    merged.set(buf);
    merged.set(chunk, buf.length);
    buf = merged;
  }
}

function send(conn: net.Socket, attrs: Record<string, string | number>): Promise<void> {
  return new Promise((resolve, reject) => {
    conn.write(encodeAttrs(attrs), (err) => err ? reject(err) : resolve());
  });
}

/** Moves a file not yet committed from incoming to hold (a HOLD action). */
function moveToHold(qf: NewQueueFile, layout: QueueLayout): void {
  const path = queueFilePath(layout, "hold", qf.id);
  const sub = hashedSubdir(layout, "hold", qf.id);
  if (sub) Deno.mkdirSync(`${queuePath(layout, "hold")}/${sub}`, { recursive: true, mode: 0o700 });
  Deno.renameSync(qf.path, path);
  qf.path = path;
  qf.queueName = "hold";
}

/** Serves one client connection: one message. */
export async function serveCleanup(conn: net.Socket, env: ServiceEnv): Promise<void> {
  const reader = new ConnReader(conn);
  await send(conn, { protocol: "cleanup" });
  const request = await readAttrs(reader);
  if (!request) return;
  const flags = parseInt(request.get("flags") ?? "0", 10) || 0;
  let qf: NewQueueFile;
  try {
    qf = createQueueFile(env.layout, "incoming", { longIds: env.longIds });
  } catch (err) {
    warn(`mail_queue_enter: ${(err as Error).message}`);
    await send(conn, { status: CleanupStat.WRITE, reason: "4.3.0 queue file write error" });
    return;
  }
  let status: number = CleanupStat.WRITE;
  let reason = "4.3.0 queue file write error";
  let queued = false;
  try {
    await send(conn, { queue_id: qf.id });
    const result = await processMessage(readRecords(reader), {
      queueId: qf.id,
      flags,
      settings: env.settings,
      tables: env.tables,
      log: { info, warn },
    });
    if (result.file) {
      writeAllSync(qf.file, result.file);
      if (result.queue === "hold") moveToHold(qf, env.layout);
      commitQueueFile(qf);
      queued = result.queue === "incoming";
    } else {
      abandonQueueFile(qf);
    }
    status = result.status;
    reason = result.reason;
  } catch (err) {
    warn(`${qf.id}: ${(err as Error).message}`);
    abandonQueueFile(qf);
  }
  // The reply comes only now: the file is durable and complete, or gone.
  await send(conn, { status, reason }).catch(() => {});
  // Only mail in incoming is the queue manager's business (not held or discarded mail).
  if (queued) wakeQmgr(env.layout.queueDirectory, env.queueService);
}

/**
 * Wakes the queue manager. Without one the file waits in incoming for the
 * next start; the warning is the reference's.
 */
function wakeQmgr(queueDirectory: string, service: string): void {
  const path = `${queueDirectory}/public/${service}`;
  try {
    Deno.statSync(path);
  } catch (err) {
    warn(`unable to look up public/${service}: ${describe(err)}`);
    return;
  }
  sendTrigger(path, TRIGGER_WAKEUP, 1000).catch(() => {});
}
