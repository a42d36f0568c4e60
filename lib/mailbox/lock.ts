// Opening a mailbox file for exclusive access, as Postfix's local(8),
// virtual(8) and postlock(1) do: a `file.lock` dotlock created exclusively
// (stale locks older than stale_lock_time removed), the file opened or
// created safely (no symbolic link a user planted, one hard link, mode 0600),
// then flock and/or fcntl locks on the open file. Each kind of lock is tried
// deliver_lock_attempts times, deliver_lock_delay apart (randomized as
// Postfix does); the waits are asynchronous so one process can keep other
// deliveries going, while every file operation runs synchronously as the
// recipient (lib/ffi/identity.ts).

import { type Identity, runAs } from "../ffi/identity.ts";
import {
  chownFd,
  closeQuietly,
  createExclusive,
  createNew,
  EAGAIN,
  EEXIST,
  EISDIR,
  ENOENT,
  EPERM,
  errorText,
  fstat,
  openAppend,
  osError,
  SysError,
  tryFcntlLock,
  tryFlock,
} from "./fd.ts";
import { type MailboxFailure, mboxDsn } from "./result.ts";
import { warn } from "../log.ts";

/** A mailbox lock style, as mailbox_delivery_lock and virtual_mailbox_lock name them. */
export type LockStyle = "flock" | "fcntl" | "dotlock";

/** The lock styles this system supports (`postconf -l`). */
export const LOCK_STYLES: readonly LockStyle[] = ["flock", "fcntl", "dotlock"];

/** Thrown by parseLockStyles for a name that is not a lock style. */
export class LockStyleError extends Error {}

/**
 * Parses a lock style list ("fcntl, dotlock"). An unknown name throws
 * LockStyleError with Postfix's text: `unknown PARAM value "x" in "value"`.
 */
export function parseLockStyles(value: string, param = "mailbox_delivery_lock"): LockStyle[] {
  const styles: LockStyle[] = [];
  for (const name of value.split(/[\s,]+/).filter(Boolean)) {
    const style = LOCK_STYLES.find((s) => s === name.toLowerCase());
    if (!style) throw new LockStyleError(`unknown ${param} value "${name}" in "${value}"`);
    if (!styles.includes(style)) styles.push(style);
  }
  return styles;
}

/** How to open and lock a mailbox. */
export interface LockOptions {
  /** Locks to take (mailbox_delivery_lock, virtual_mailbox_lock). */
  styles: LockStyle[];
  /** deliver_lock_attempts (default 20). */
  attempts?: number;
  /** deliver_lock_delay in seconds (default 1). */
  delay?: number;
  /** stale_lock_time in seconds (default 500). */
  staleTime?: number;
  /** Who opens, creates and writes the file (default: the process itself). */
  identity?: Identity;
  /** Owner to give a newly created mailbox (when creating it as root, e.g. in /var/mail). */
  createOwner?: { uid: number; gid: number };
  /** Mode of a newly created mailbox (default 0600). */
  mode?: number;
  /** The DSN code for failures without a more specific one (local: 5.2.0, virtual: 4.2.0). */
  defaultDsn?: string;
  /** A dotlock that cannot be created for reasons other than "exists" is only a warning. */
  dotlockMayFail?: boolean;
  /** Waits between attempts (tests replace it). */
  sleep?: (ms: number) => Promise<void>;
}

/** A mailbox opened for appending, with its locks held. */
export interface OpenMailbox {
  readonly path: string;
  /** The open descriptor (O_APPEND); kernel locks are held on it. */
  readonly fd: number;
  /** The file's status after opening. */
  readonly info: Deno.FileInfo;
  /** Whether the file was created by this open. */
  readonly created: boolean;
  /** The identity it was opened as. */
  readonly identity?: Identity;
  /** Closes the file (dropping kernel locks) and removes the dotlock. */
  release(): void;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** deliver_lock_delay randomized by ±25%, as Postfix's rand_sleep() does. */
function lockDelayMs(opts: LockOptions): number {
  const base = (opts.delay ?? 1) * 1000;
  return base * 0.75 + Math.random() * base * 0.5;
}

/** The dotlock file name of `path`. */
export function dotlockPath(path: string): string {
  return path + ".lock";
}

/**
 * One attempt at `path.lock`: created exclusively (mode 0, as Postfix's
 * are). When it exists and is older than stale_lock_time, it is removed
 * so the next attempt can succeed. Returns true when the lock was made.
 */
export function tryDotlock(path: string, staleTime: number): boolean {
  const lock = dotlockPath(path);
  try {
    closeQuietly(createNew(lock, 0));
    return true;
  } catch (err) {
    if (!(err instanceof SysError) || err.errno !== EEXIST) throw err;
  }
  try {
    const info = Deno.statSync(lock);
    const changed = (info.ctime ?? info.mtime)?.getTime() ?? Date.now();
    if (Date.now() / 1000 > changed / 1000 + staleTime) Deno.removeSync(lock);
  } catch {
    // Gone already: the next attempt tells.
  }
  return false;
}

/** Removes the dotlock of `path` (ignoring a missing one). */
export function removeDotlock(path: string): void {
  try {
    Deno.removeSync(dotlockPath(path));
  } catch {
    // Removed by someone else: nothing to release.
  }
}

/**
 * Makes the dotlock of `path` within the attempt budget. Fails with
 * "unable to create lock file PATH.lock: File exists" (4.2.0) when another
 * holder keeps it, or with the error that stopped the attempts.
 */
export async function acquireDotlock(
  path: string,
  opts: LockOptions,
): Promise<MailboxFailure | undefined> {
  const attempts = Math.max(opts.attempts ?? 20, 1);
  const sleep = opts.sleep ?? defaultSleep;
  for (let count = 1;; count++) {
    let made: boolean;
    try {
      made = runAs(opts.identity, () => tryDotlock(path, opts.staleTime ?? 500));
    } catch (err) {
      const e = osError(err);
      return {
        dsn: mboxDsn(e.errno, opts.defaultDsn ?? "5.2.0"),
        text: `unable to create lock file ${dotlockPath(path)}: ${e.text}`,
        errno: e.errno,
      };
    }
    if (made) return undefined;
    if (count >= attempts) break;
    await sleep(lockDelayMs(opts));
  }
  return {
    dsn: mboxDsn(EAGAIN, opts.defaultDsn ?? "5.2.0"),
    text: `unable to create lock file ${dotlockPath(path)}: ${errorText(EEXIST)}`,
    errno: EEXIST,
  };
}

/**
 * Opens (or creates, mode 0600) `path` for appending, refusing what
 * Postfix's safe_open() refuses: a file with more than one hard link, a
 * symbolic link not owned by root, a file that changed between open and
 * lstat. A new file gets `createOwner` when given.
 */
export function safeOpen(
  path: string,
  mode: number,
  createOwner?: { uid: number; gid: number },
): { fd: number; created: boolean } | { text: string; errno: number } {
  let fd: number;
  try {
    fd = openAppend(path);
  } catch (err) {
    const e = osError(err);
    if (e.errno !== ENOENT) return { text: `cannot open file: ${e.text}`, errno: e.errno };
    return safeCreate(path, mode, createOwner);
  }
  const problem = checkOpened(path, fd);
  if (problem) {
    closeQuietly(fd);
    return problem;
  }
  return { fd, created: false };
}

/** The checks on an opened existing file; a failure, or undefined when it is safe. */
function checkOpened(path: string, fd: number): { text: string; errno: number } | undefined {
  const opened = fstat(fd);
  if (opened.nlink !== 1) return { text: `file has ${opened.nlink} hard links`, errno: EPERM };
  if (opened.isDirectory) return { text: "file is a directory", errno: EISDIR };
  let link: Deno.FileInfo;
  try {
    link = Deno.lstatSync(path);
  } catch (err) {
    return { text: `file status changed unexpectedly: ${osError(err).text}`, errno: EPERM };
  }
  // A symbolic link is allowed only when root owns it (an administrator's choice).
  if (link.isSymlink) {
    return link.uid === 0 ? undefined : { text: "file is a symbolic link", errno: EPERM };
  }
  if (
    opened.dev !== link.dev || opened.ino !== link.ino || opened.nlink !== link.nlink ||
    opened.mode !== link.mode
  ) {
    return { text: "file status changed unexpectedly", errno: EPERM };
  }
  return undefined;
}

/** Creates a new file exclusively (never through a symbolic link), with the owner given. */
function safeCreate(
  path: string,
  mode: number,
  createOwner?: { uid: number; gid: number },
): { fd: number; created: boolean } | { text: string; errno: number } {
  let fd: number;
  try {
    fd = createExclusive(path, mode);
  } catch (err) {
    const e = osError(err);
    return { text: `cannot create file exclusively: ${e.text}`, errno: e.errno };
  }
  if (createOwner) {
    try {
      chownFd(fd, createOwner.uid, createOwner.gid);
    } catch (err) {
      closeQuietly(fd);
      const e = osError(err);
      warn(`${path}: cannot change file ownership: ${e.text}`);
      return { text: `cannot change file ownership: ${e.text}`, errno: e.errno };
    }
  }
  return { fd, created: true };
}

/** One attempt at the kernel locks `styles` on `fd`: true when all are held. */
function tryKernelLocks(fd: number, styles: LockStyle[]): boolean {
  if (styles.includes("flock") && !tryFlock(fd)) return false;
  if (styles.includes("fcntl") && !tryFcntlLock(fd)) return false;
  return true;
}

/**
 * Opens `path` for exclusive appending: dotlock first (when asked and the
 * path is missing or a regular file), then the file, then kernel locks
 * (regular files only). On failure nothing is left locked or open, and the
 * result carries Postfix's reason text and DSN code (4.2.0 for a lock held
 * too long).
 */
export async function openMailbox(
  path: string,
  opts: LockOptions,
): Promise<{ ok: true; mailbox: OpenMailbox } | ({ ok: false } & MailboxFailure)> {
  const unclaim = await claimPath(path);
  let result;
  try {
    result = await lockMailbox(path, opts, unclaim);
  } finally {
    if (!result?.ok) unclaim();
  }
  return result;
}

// Mailboxes this process has open, each with a promise settled on release.
// fcntl locks belong to the process (a second one of ours would succeed,
// and closing any descriptor of the file drops them), so deliveries within
// one process take turns per path before locking against other processes.
const claimed = new Map<string, Promise<void>>();

async function claimPath(path: string): Promise<() => void> {
  while (claimed.has(path)) await claimed.get(path);
  let settle!: () => void;
  claimed.set(path, new Promise<void>((resolve) => (settle = resolve)));
  return () => {
    claimed.delete(path);
    settle();
  };
}

async function lockMailbox(
  path: string,
  opts: LockOptions,
  unclaim: () => void,
): Promise<{ ok: true; mailbox: OpenMailbox } | ({ ok: false } & MailboxFailure)> {
  const def = opts.defaultDsn ?? "5.2.0";
  let dotlocked = false;
  if (opts.styles.includes("dotlock") && isMissingOrRegular(path, opts.identity)) {
    const failed = await acquireDotlock(path, opts);
    if (failed && (failed.errno === EEXIST || !opts.dotlockMayFail)) {
      return { ok: false, ...failed };
    }
    // Delivery to a file in a directory the user may not write: no dotlock then.
    if (failed) warn(failed.text);
    dotlocked = !failed;
  }
  const unlockDot = () => {
    if (dotlocked) runAs(opts.identity, () => removeDotlock(path));
  };
  const opened = runAs(opts.identity, () => safeOpen(path, opts.mode ?? 0o600, opts.createOwner));
  if ("text" in opened) {
    unlockDot();
    return { ok: false, dsn: mboxDsn(opened.errno, def), text: opened.text, errno: opened.errno };
  }
  const { fd, created } = opened;
  const fail = (failure: MailboxFailure) => {
    closeQuietly(fd);
    unlockDot();
    return { ok: false as const, ...failure };
  };
  let info = fstat(fd);
  if (info.isFile) {
    const attempts = Math.max(opts.attempts ?? 20, 1);
    for (let count = 1;; count++) {
      let locked: boolean;
      try {
        locked = tryKernelLocks(fd, opts.styles);
      } catch (err) {
        const e = osError(err);
        return fail({
          dsn: mboxDsn(e.errno, def),
          text: `unable to lock for exclusive access: ${e.text}`,
          errno: e.errno,
        });
      }
      if (locked) break;
      if (count >= attempts) {
        return fail({
          dsn: mboxDsn(EAGAIN, def),
          text: `unable to lock for exclusive access: ${errorText(EAGAIN)}`,
          errno: EAGAIN,
        });
      }
      await (opts.sleep ?? defaultSleep)(lockDelayMs(opts));
    }
    // Another program may have removed or renamed the file while we waited.
    info = fstat(fd);
    if (info.nlink !== 1) {
      return fail({
        dsn: mboxDsn(EAGAIN, def),
        text: "target file status changed unexpectedly",
        errno: EAGAIN,
      });
    }
  }
  let released = false;
  return {
    ok: true,
    mailbox: {
      path,
      fd,
      info,
      created,
      identity: opts.identity,
      release() {
        if (released) return;
        released = true;
        closeQuietly(fd);
        unlockDot();
        unclaim();
      },
    },
  };
}

function isMissingOrRegular(path: string, identity: Identity | undefined): boolean {
  return runAs(identity, () => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return true;
    }
  });
}
