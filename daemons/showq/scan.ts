// The queue walk behind showq: every complete queue file of the maildrop,
// active, incoming, deferred and hold queues, in that order and in
// directory order within each (hashed subdirectories entered where they are
// met), read for its arrival time, size, sender and pending recipients, with
// the deferral reasons from its defer log.

import { queueFilePath, type QueueLayout, queuePath } from "../../lib/queue/layout.ts";
import {
  decodeRecordAt,
  RecordError,
  RecordReader,
  recordText,
  RecordType,
} from "../../lib/queue/record.ts";
import { quoteAddress } from "../../lib/address/quote.ts";
import { warn } from "../../lib/log.ts";
import type { QueuedMessage, QueuedRecipient } from "../../lib/showq_client.ts";
import { readDeferLog } from "./defer_log.ts";

/** How addresses and reasons are shown. */
export interface ShowOptions {
  /** smtputf8_enable: UTF-8 text is shown as is, else each non-ASCII byte as `?`. */
  utf8: boolean;
}

/** The queues showq reports, in the order Postfix's showq reports them. */
export const showqQueues = ["maildrop", "active", "incoming", "deferred", "hold"];

/** postsuper -e/-f marks a message for expiry with the group execute bit. */
export const forcedExpireBit = 0o010;

/** A name that can be a queue file (Postfix's test: letters and digits only). */
export function queueIdOk(name: string): boolean {
  return name.length > 0 && name.length <= 100 && /^[A-Za-z0-9]+$/.test(name);
}

/** Queue file names under `dir`, depth first through one-character (hash) subdirectories. */
export function* walkQueue(dir: string): Generator<{ id: string; path: string }> {
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name.length === 1) {
      yield* walkQueue(path);
    } else if (queueIdOk(entry.name)) {
      yield { id: entry.name, path };
    }
  }
}

/** Every listed message of the queue tree, read one file at a time. */
export function* scanQueues(
  layout: QueueLayout,
  show: ShowOptions = { utf8: true },
): Generator<QueuedMessage> {
  // One listing of the defer logs up front spares a failed open per message
  // without one (most of a large queue); a log written after it is picked
  // up by the next listing.
  const logged = new Set([...walkQueue(queuePath(layout, "defer"))].map((e) => e.id));
  for (const queueName of showqQueues) {
    for (const { id, path } of walkQueue(queuePath(layout, queueName))) {
      const msg = readQueuedMessage(layout, queueName, id, path, logged, show);
      if (msg) yield msg;
    }
  }
}

/**
 * Reads one queue file; null when it is gone, not a regular file, not yet
 * complete (no owner execute bit) or unreadable, as showq skips those.
 */
export function readQueuedMessage(
  layout: QueueLayout,
  queueName: string,
  id: string,
  path: string,
  logged?: Set<string>,
  show: ShowOptions = { utf8: true },
): QueuedMessage | null {
  let info: Deno.FileInfo;
  let data: Uint8Array;
  try {
    info = Deno.lstatSync(path);
    if (!info.isFile || ((info.mode ?? 0) & 0o100) === 0) return null;
    data = readForListing(path, info.size);
  } catch (err) {
    if (err instanceof RecordError) warn(`${queueName}/${id}: ${err.message}`);
    return null; // Removed or moved since the directory was read.
  }
  const msg: QueuedMessage = {
    queueName,
    queueId: id,
    arrivalTime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
    size: info.size,
    forcedExpire: ((info.mode ?? 0) & forcedExpireBit) !== 0,
    sender: "",
    recipients: [],
  };
  let pending: string[];
  try {
    pending = readEnvelope(data, msg);
  } catch (err) {
    if (!(err instanceof RecordError)) throw err;
    warn(`${queueName}/${id}: ${err.message}`);
    return null;
  }
  msg.recipients = withReasons(layout, id, pending, !logged || logged.has(id)).map((r) => ({
    address: printable(r.address, show.utf8),
    reason: printable(r.reason, show.utf8),
  }));
  msg.sender = printable(msg.sender, show.utf8);
  return msg;
}

/** Files up to this size are read whole; in larger ones the message text is skipped. */
const readWholeUpTo = 65536;

/**
 * The bytes of a queue file that a listing needs. A large file is read
 * without its message text, whose place the C record gives: the buffer has
 * the file's size, but only the envelope before the text and the records
 * after it are read in (the untouched pages between cost no memory).
 */
function readForListing(path: string, size: number): Uint8Array {
  const file = Deno.openSync(path, { read: true });
  try {
    const buf = new Uint8Array(size);
    if (size <= readWholeUpTo) {
      readRange(file, buf, 0, size);
      return buf;
    }
    readRange(file, buf, 0, Math.min(size, 512));
    const span = contentSpan(buf);
    if (!span || span.start > span.end || span.end > size) {
      readRange(file, buf, 0, size);
    } else {
      readRange(file, buf, 0, span.start);
      readRange(file, buf, span.end, size);
    }
    return buf;
  } finally {
    file.close();
  }
}

/** Reads bytes [from, to) of the file into the same place of `buf`. */
function readRange(file: Deno.FsFile, buf: Uint8Array, from: number, to: number): void {
  file.seekSync(from, Deno.SeekMode.Start);
  let at = from;
  while (at < to) {
    const n = file.readSync(buf.subarray(at, to));
    if (n === null) throw new RecordError("file shrank while being read");
    at += n;
  }
}

/** Where the message text starts and ends, from a leading C record; null without one. */
function contentSpan(head: Uint8Array): { start: number; end: number } | null {
  try {
    const got = decodeRecordAt(head, 0);
    if (!got || got.record.type !== RecordType.SIZE) return null;
    const [size, offset] = recordText(got.record).trim().split(/\s+/).map(Number);
    if (!(size >= 0 && offset > 0)) return null;
    return { start: offset, end: offset + size };
  } catch {
    return null;
  }
}

/** Fills in time, size and sender; returns the pending recipients in file order. */
function readEnvelope(data: Uint8Array, msg: QueuedMessage): string[] {
  const pending: string[] = [];
  let reader = new RecordReader(data);
  let extractedAt = 0;
  for (let rec = reader.next(); rec; rec = reader.next()) {
    const text = () => recordText(rec!);
    switch (rec.type) {
      case RecordType.SIZE: {
        const fields = text().trim().split(/\s+/).map(Number);
        if (fields[0] >= 0) msg.size = fields[0];
        // The extracted segment follows the content: skip the text itself.
        if (fields[1] > 0 && fields[0] >= 0) extractedAt = fields[1] + fields[0];
        break;
      }
      case RecordType.TIME:
        msg.arrivalTime = parseInt(text(), 10) || msg.arrivalTime;
        break;
      case RecordType.FROM:
        msg.sender = shownAddress(text());
        break;
      case RecordType.RCPT:
        pending.push(shownAddress(text()));
        break;
      case RecordType.MESG:
        if (extractedAt > 0 && extractedAt < data.length) {
          reader = new RecordReader(data, extractedAt);
        }
        break;
      case RecordType.END:
        return pending;
    }
  }
  return pending;
}

/**
 * The recipients as showq lists them: first every entry of the defer log,
 * in log order (a recipient deferred twice is listed twice, as Postfix
 * does), with its reason; then the pending recipients the log does not
 * name, without a reason.
 */
function withReasons(
  layout: QueueLayout,
  id: string,
  pending: string[],
  hasLog: boolean,
): QueuedRecipient[] {
  const logged = hasLog ? readDeferLog(queueFilePath(layout, "defer", id)) : [];
  const out: QueuedRecipient[] = [];
  const seen = new Set<string>();
  for (const entry of logged) {
    const address = shownAddress(entry.recipient);
    seen.add(address);
    out.push({ address, reason: entry.reason });
  }
  for (const address of pending) {
    if (!seen.has(address)) out.push({ address, reason: "" });
  }
  return out;
}

/**
 * An address as showq shows it: the local part quoted where RFC 5322 needs
 * it, a source route (`@a,@b:`) left outside the quotes, the null address
 * as MAILER-DAEMON.
 */
export function shownAddress(address: string): string {
  if (address === "") return "MAILER-DAEMON";
  const at = address.lastIndexOf("@");
  const colon = address.indexOf(":");
  if (address.startsWith("@") && colon > 0 && colon < at) {
    return address.slice(0, colon + 1) + quoteAddress(address.slice(colon + 1));
  }
  return quoteAddress(address);
}

/**
 * Text made safe for a listing, as Postfix's printable(): control characters
 * become `?`, and so does each byte of non-ASCII text unless UTF-8 is enabled
 * (undecodable bytes, read as U+FFFD, always).
 */
export function printable(text: string, utf8: boolean): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f || code === 0xfffd) out += "?";
    else if (code < 0x80 || utf8) out += ch;
    else out += "?".repeat(new TextEncoder().encode(ch).length);
  }
  return out;
}
