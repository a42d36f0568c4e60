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
import { type CleanupResult, type InputRecord, processMessage } from "./core.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { deliveryLogLine } from "../../lib/deliver/log_line.ts";
import { splitDsnText } from "../../lib/dsn/status.ts";
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
  /** The bounce service, for messages cleanup bounces itself (absent: none are). */
  bounce?: BounceService;
  /** delay_logging_resolution_limit. */
  resolution?: number;
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
    status = result.status;
    reason = result.reason;
    if (result.file) {
      writeAllSync(qf.file, result.file);
      if (result.queue === "hold") moveToHold(qf, env.layout);
      commitQueueFile(qf);
      queued = result.queue === "incoming";
    } else {
      if (result.bounce && env.bounce) {
        writeAllSync(qf.file, result.bounce.file);
        if (await bounceRefused(qf.id, result, env)) status = CleanupStat.OK;
      }
      abandonQueueFile(qf);
    }
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
 * Bounces a message refused for good when the client asked for it
 * (Postfix's cleanup_bounce): every recipient logged `status=bounced`
 * with relay=none and appended to the bounce log, then the non-delivery
 * notice sent from the not yet committed file in incoming. True when the
 * notice went out: the client is then told the message was taken care of.
 */
async function bounceRefused(id: string, result: CleanupResult, env: ServiceEnv): Promise<boolean> {
  const b = result.bounce!;
  const { code, text } = splitDsnText(result.reason, "5.0.0");
  const dsn = { status: code, action: "failed", reason: text };
  const now = Date.now() / 1000;
  const times = { arrival: b.arrival, active: now, agentStart: now, connSetup: now };
  for (const rcpt of b.recipients) {
    info(deliveryLogLine(
      {
        queueId: id,
        recipient: rcpt.address,
        origRecipient: rcpt.origRcpt,
        relay: "none",
        times,
        dsn: code,
        status: "bounced",
        text,
      },
      now,
      env.resolution,
    ));
    if (!await env.bounce!.append("bounce", id, rcpt, dsn)) {
      warn(`${id}: bounce message failure`);
      return false;
    }
  }
  const sent = await env.bounce!.notify("flush", "bounce", {
    queueName: "incoming",
    queueId: id,
    encoding: b.encoding,
    smtputf8: b.smtputf8,
    sender: b.sender,
    envid: b.envid,
    ret: b.ret,
  });
  if (!sent) warn(`${id}: bounce message failure`);
  return sent;
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
