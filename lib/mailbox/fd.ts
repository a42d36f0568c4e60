// File-descriptor operations a mailbox writer needs and Deno.FsFile does not
// give: kernel locks (flock and fcntl) on the descriptor that is written,
// ftruncate back to the old size, fchown of a new mailbox, all through libc
// so that the lock and the writes are on one open file. Every call is
// synchronous (it runs inside an identity section, lib/ffi/identity.ts).

import { openLibc, readErrno } from "../ffi/open.ts";
import { strerror } from "../ffi/libc.ts";

/** A failed system call: the call's name and errno, with strerror's text. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number, readonly text: string) {
    super(`${call}: ${text}`);
  }
}

// errno values (Linux) the mailbox code tells apart.
/** EPERM. */
export const EPERM = 1;
/** EISDIR. */
export const EISDIR = 21;
/** ENOENT. */
export const ENOENT = 2;
/** EACCES. */
export const EACCES = 13;
/** EEXIST. */
export const EEXIST = 17;
/** EAGAIN. */
export const EAGAIN = 11;
/** EFBIG. */
export const EFBIG = 27;
/** ENOSPC. */
export const ENOSPC = 28;
/** ESTALE. */
export const ESTALE = 116;
/** EDQUOT. */
export const EDQUOT = 122;

const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_APPEND = 0o2000;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_SETFL = 4;
const F_SETLK = 6;
const F_WRLCK = 1;
const F_UNLCK = 2;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const SEEK_END = 2;

const symbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  fsync: { parameters: ["i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  fcntlInt: { name: "fcntl", parameters: ["i32", "i32", "i64"], result: "i32" },
  fcntlLock: { name: "fcntl", parameters: ["i32", "i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];
let libc: Libc | undefined;

function lib(): Libc {
  return libc ??= openLibc(symbols);
}

function errno(): number {
  return readErrno(lib().__errno_location);
}

/** strerror(3) text of an errno value ("Permission denied"). */
export function errorText(code: number): string {
  return strerror(code);
}

function fail(call: string): never {
  const code = errno();
  throw new SysError(call, code, errorText(code));
}

function check(call: string, result: number | bigint): number {
  const n = Number(result);
  if (n < 0) fail(call);
  return n;
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes);
  return buf;
}

/** Opens an existing file for appending (the caller checks what it opened). */
export function openAppend(path: string): number {
  const flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC;
  const fd = check("open", lib().open(cString(path), flags, 0));
  // Opened non-blocking to fend off a fifo planted as the target; writes block.
  lib().fcntlInt(fd, F_SETFL, BigInt(O_APPEND));
  return fd;
}

/** Creates `path` exclusively (never through a symbolic link) for appending. */
export function createExclusive(path: string, mode: number): number {
  return check(
    "open",
    lib().open(cString(path), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode),
  );
}

/** Creates `path` exclusively for reading and writing (a lock file, a maildir file). */
export function createNew(path: string, mode: number): number {
  return check("open", lib().open(cString(path), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
}

/** Closes a descriptor, reporting a failure (a remote file system may report write errors here). */
export function closeFd(fd: number): void {
  check("close", lib().close(fd));
}

/** Closes a descriptor, ignoring errors (cleanup after another failure). */
export function closeQuietly(fd: number): void {
  lib().close(fd);
}

/** Writes all of `data` (write(2) until done). */
export function writeAll(fd: number, data: Uint8Array): void {
  let at = 0;
  while (at < data.length) {
    const part = data.subarray(at) as Uint8Array<ArrayBuffer>;
    const n = Number(lib().write(fd, part, BigInt(part.length)));
    if (n < 0) {
      if (errno() === 4 /* EINTR */) continue;
      fail("write");
    }
    at += n;
  }
}

/** The file's size (the offset of its end). */
export function endOffset(fd: number): number {
  return check("lseek", lib().lseek(fd, 0n, SEEK_END));
}

/** fsync(2). */
export function syncFd(fd: number): void {
  check("fsync", lib().fsync(fd));
}

/** ftruncate(2). */
export function truncateFd(fd: number, length: number): void {
  check("ftruncate", lib().ftruncate(fd, BigInt(length)));
}

/** fchown(2). */
export function chownFd(fd: number, uid: number, gid: number): void {
  check("fchown", lib().fchown(fd, uid, gid));
}

/** flock(LOCK_EX|LOCK_NB); false when another process holds the lock. */
export function tryFlock(fd: number): boolean {
  if (lib().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const code = errno();
  if (code === EAGAIN) return false;
  throw new SysError("flock", code, errorText(code));
}

/** Releases a flock lock. */
export function unlockFlock(fd: number): void {
  lib().flock(fd, LOCK_UN);
}

// struct flock on Linux (x86_64, aarch64): l_type and l_whence (shorts),
// l_start and l_len (off_t at 8 and 16), l_pid (at 24); 32 bytes.
function flockStruct(type: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(32);
  const view = new DataView(buf.buffer);
  view.setInt16(0, type, true);
  view.setInt16(2, 0, true); // SEEK_SET, from 0, length 0: the whole file
  return buf;
}

/** fcntl(F_SETLK, F_WRLCK) on the whole file; false when another process holds a lock. */
export function tryFcntlLock(fd: number): boolean {
  if (lib().fcntlLock(fd, F_SETLK, flockStruct(F_WRLCK)) === 0) return true;
  const code = errno();
  if (code === EAGAIN || code === EACCES) return false;
  throw new SysError("fcntl", code, errorText(code));
}

/** Releases an fcntl lock. */
export function unlockFcntl(fd: number): void {
  lib().fcntlLock(fd, F_SETLK, flockStruct(F_UNLCK));
}

/** The status of an open file (through /proc/self/fd, which names the open file itself). */
export function fstat(fd: number): Deno.FileInfo {
  return Deno.statSync(`/proc/self/fd/${fd}`);
}

/** The errno and strerror text of an error thrown by a Deno file operation or by this module. */
export function osError(err: unknown): { errno: number; text: string } {
  if (err instanceof SysError) return { errno: err.errno, text: err.text };
  const message = err instanceof Error ? err.message : String(err);
  const m = /^(.*?) \(os error (\d+)\)/.exec(message);
  if (m) return { errno: Number(m[2]), text: m[1] };
  return { errno: 5, text: message };
}
