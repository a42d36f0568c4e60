// Delivering a message to a maildir (maildir(5)) as Postfix's local(8) and
// virtual(8) do: the file is written in tmp/ as `SECONDS.PPID.HOST`,
// fsynced, then linked into new/ as `SECONDS.VdevIinoMusec.HOST` (device and
// inode in hex, microseconds in decimal: unique without relying on process
// ids) and removed from tmp/. tmp/, new/ and cur/ are created (mode 0700)
// when missing. The message gets the caller's prepended headers, no From_
// line, no quoting. Everything runs in one synchronous section as the
// recipient, so concurrent deliveries of one process never share a tmp name.

import { messageBytes, type MessageContent } from "../deliver/message.ts";
import { type Identity, runAs } from "../ffi/identity.ts";
import {
  closeFd,
  closeQuietly,
  createNew,
  EFBIG,
  ENOENT,
  errorText,
  fstat,
  osError,
  syncFd,
  writeAll,
} from "./fd.ts";
import { type MailboxResult, mboxDsn } from "./result.ts";

/** One delivery to a maildir. */
export interface MaildirDelivery {
  /** The maildir (with or without the trailing slash). */
  dir: string;
  /** The message, as lib/deliver/message.ts reads it. */
  content: MessageContent;
  /** Header lines to put first (Return-Path:, X-Original-To:, Delivered-To:), without line ends. */
  prepend?: string[];
  /** Largest message file in bytes (mailbox_size_limit / virtual_mailbox_limit; 0: none). */
  sizeLimit?: number;
  /** Who creates and writes the files. */
  identity?: Identity;
  /** The host name part of the file names (default: this host's name). */
  hostname?: string;
  /** The clock: milliseconds since the epoch, with fraction (tests replace it). */
  now?: () => number;
}

/** A host name as maildir file names hold it: "/" as \057 and ":" as \072. */
export function maildirHostname(host: string): string {
  return host.replaceAll("/", "\\057").replaceAll(":", "\\072");
}

/** The tmp/ name of a delivery started at `sec`: SECONDS.PPID.HOST. */
export function maildirTmpName(sec: number, pid: number, host: string): string {
  return `${sec}.P${pid}.${maildirHostname(host)}`;
}

/** The new/ name: SECONDS.VdevIinoMusec.HOST (dev and ino in hex). */
export function maildirNewName(
  sec: number,
  usec: number,
  dev: number,
  ino: number,
  host: string,
): string {
  return `${sec}.V${dev.toString(16)}I${ino.toString(16)}M${usec}.${maildirHostname(host)}`;
}

function join(dir: string, sub: string): string {
  return dir.endsWith("/") ? dir + sub : `${dir}/${sub}`;
}

function syncDirectory(path: string): void {
  // Makes the new directory entry durable; a file system that refuses to
  // fsync a directory has nothing to sync.
  try {
    const dir = Deno.openSync(path, { read: true });
    try {
      dir.syncSync();
    } finally {
      dir.close();
    }
  } catch {
    // Not supported here.
  }
}

/**
 * Delivers one message to a maildir. Failures carry Postfix's reason:
 * "create maildir file PATH: Permission denied" (4.2.0 unless the error
 * says otherwise), "error writing message: File too large" (5.2.2); the
 * agent prefixes "maildir delivery failed: ".
 */
export function deliverToMaildir(d: MaildirDelivery): MailboxResult {
  const nowMs = (d.now ?? (() => performance.timeOrigin + performance.now()))();
  const sec = Math.floor(nowMs / 1000);
  const usec = Math.floor((nowMs - sec * 1000) * 1000);
  const host = d.hostname ?? Deno.hostname();
  const data = messageBytes(d.content, { prepend: d.prepend });
  const tmpDir = join(d.dir, "tmp");
  const tmpFile = `${tmpDir}/${maildirTmpName(sec, Deno.pid, host)}`;
  return runAs(d.identity, () => {
    let fd: number;
    try {
      fd = createWithDirs(tmpFile, [tmpDir]);
    } catch (err) {
      const e = osError(err);
      return failure(
        mboxDsn(e.errno, "4.2.0"),
        `create maildir file ${tmpFile}: ${e.text}`,
        e.errno,
      );
    }
    try {
      const info = fstat(fd);
      const newFile = `${join(d.dir, "new")}/${
        maildirNewName(sec, usec, info.dev, info.ino ?? 0, host)
      }`;
      const written = writeMessage(fd, data, d.sizeLimit ?? 0);
      fd = -1;
      if (written) return written;
      try {
        linkWithDirs(tmpFile, newFile, [join(d.dir, "cur"), join(d.dir, "new")]);
      } catch (err) {
        const e = osError(err);
        return failure(
          mboxDsn(e.errno, "4.2.0"),
          `create maildir file ${newFile}: ${e.text}`,
          e.errno,
        );
      }
      syncDirectory(join(d.dir, "new"));
      return { ok: true as const, path: newFile };
    } finally {
      if (fd >= 0) closeQuietly(fd);
      try {
        Deno.removeSync(tmpFile);
      } catch {
        // Nothing to remove.
      }
    }
  });
}

function failure(dsn: string, text: string, errno?: number): MailboxResult {
  return { ok: false, dsn, text, errno };
}

/** Writes, fsyncs and closes the tmp file; a failure result, or undefined when all went well. */
function writeMessage(fd: number, data: Uint8Array, sizeLimit: number): MailboxResult | undefined {
  try {
    try {
      if (sizeLimit > 0 && data.length > sizeLimit) {
        throw Object.assign(new Error(errorText(EFBIG)), { errno: EFBIG });
      }
      writeAll(fd, data);
      syncFd(fd);
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
    closeFd(fd);
    return undefined;
  } catch (err) {
    const e = (err as { errno?: number }).errno === EFBIG
      ? { errno: EFBIG, text: errorText(EFBIG) }
      : osError(err);
    return failure(mboxDsn(e.errno, "5.3.0"), `error writing message: ${e.text}`, e.errno);
  }
}

function createWithDirs(path: string, dirs: string[]): number {
  try {
    return createNew(path, 0o600);
  } catch (err) {
    if (osError(err).errno !== ENOENT) throw err;
  }
  for (const dir of dirs) Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return createNew(path, 0o600);
}

function linkWithDirs(from: string, to: string, dirs: string[]): void {
  try {
    Deno.linkSync(from, to);
    return;
  } catch (err) {
    if (osError(err).errno !== ENOENT) throw err;
  }
  for (const dir of dirs) Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.linkSync(from, to);
}
