// Running a section of code as another user: the effective uid, gid and
// supplementary groups of the calling thread switched for the length of one
// synchronous function, then restored to root. Delivery agents use it so
// that a mailbox or maildir file is created and written with the
// recipient's rights (file quota, ownership, no root privilege on a path a
// user controls), as Postfix's set_eugid() does around mailbox writes.
//
// The switch is made with the raw setresuid/setresgid/setgroups system
// calls, which on Linux change the credentials of the calling thread only
// (glibc's wrappers would broadcast the change to every thread of the
// process, including the runtime's I/O pool, where another delivery's
// asynchronous file operations may be running). Deno runs synchronous file
// operations on the JavaScript thread, so everything the section does
// happens under the switched identity and nothing else does.

import { openLibc, readErrno } from "./open.ts";

/** The identity a section runs as. */
export interface Identity {
  uid: number;
  gid: number;
  /** Supplementary groups (default: just `gid`). */
  groups?: number[];
}

/** Thrown when switching identity fails, or when a section is not synchronous. */
export class IdentityError extends Error {}

// System call numbers of the calls used (they differ by architecture).
const SYSCALLS: Record<string, { setresuid: number; setresgid: number; setgroups: number }> = {
  x86_64: { setresuid: 117, setresgid: 119, setgroups: 116 },
  aarch64: { setresuid: 147, setresgid: 149, setgroups: 159 },
};

const symbols = {
  syscall3: { name: "syscall", parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  syscallPtr: { name: "syscall", parameters: ["i64", "i64", "buffer"], result: "i64" },
  geteuid: { parameters: [], result: "u32" },
  getegid: { parameters: [], result: "u32" },
  getgroups: { parameters: ["i32", "buffer"], result: "i32" },
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

function numbers() {
  const n = SYSCALLS[Deno.build.arch];
  if (!n) throw new IdentityError(`identity switching is not supported on ${Deno.build.arch}`);
  return n;
}

// -1 as an argument of setres*id: leave that id unchanged.
const KEEP = -1n;

function call(what: string, result: bigint): void {
  if (result < 0n) throw new IdentityError(`${what}: errno ${errno()}`);
}

function setGroups(groups: number[]): void {
  const buf = new Uint32Array(groups.length || 1);
  buf.set(groups);
  call(
    "setgroups",
    lib().syscallPtr(
      BigInt(numbers().setgroups),
      BigInt(groups.length),
      new Uint8Array(buf.buffer),
    ),
  );
}

function currentGroups(): number[] {
  const n = lib().getgroups(0, new Uint8Array(0));
  if (n <= 0) return [];
  const buf = new Uint32Array(n);
  const got = lib().getgroups(n, new Uint8Array(buf.buffer));
  return Array.from(buf.subarray(0, Math.max(got, 0)));
}

/** The effective uid of the calling thread (0 when running as root). */
export function effectiveUid(): number {
  return lib().geteuid();
}

/** Whether identity switching is possible: the process runs as root. */
export function canSwitchIdentity(): boolean {
  return Deno.build.os === "linux" && Deno.uid() === 0 && effectiveUid() === 0;
}

function switchTo(id: Identity): void {
  const n = numbers();
  // Groups and gid first: once the euid is not 0 they can no longer change.
  setGroups(id.groups ?? [id.gid]);
  call("setresgid", lib().syscall3(BigInt(n.setresgid), KEEP, BigInt(id.gid), KEEP));
  call("setresuid", lib().syscall3(BigInt(n.setresuid), KEEP, BigInt(id.uid), KEEP));
}

function switchBack(gid: number, groups: number[]): void {
  const n = numbers();
  // The saved uid stayed 0, so the effective uid can return to it.
  call("setresuid", lib().syscall3(BigInt(n.setresuid), KEEP, 0n, KEEP));
  call("setresgid", lib().syscall3(BigInt(n.setresgid), KEEP, BigInt(gid), KEEP));
  setGroups(groups);
}

/**
 * Runs `section` with the effective uid/gid/groups of `id` and returns its
 * result, restoring root afterwards (also when it throws). The section must
 * be synchronous: no await inside, so that no other task of the process can
 * run while the identity is switched (a section that returns a promise is
 * an error), and no asynchronous call either (the runtime may start it on a
 * thread it creates then, which would keep the identity). When the process does not run as root, or `id` is undefined,
 * or `id` is root itself, the section runs as it is; so does a section
 * nested in a section of the same user (another user there is an error).
 */
export function runAs<T>(id: Identity | undefined, section: () => T): T {
  // A section within a section of the same user runs as it is.
  if (active && id && active.uid === id.uid && active.gid === id.gid) {
    return checkSync(section());
  }
  if (active) throw new IdentityError("runAs: already running as another user");
  if (!id || id.uid === 0 || !canSwitchIdentity()) return checkSync(section());
  const gid = lib().getegid();
  const groups = currentGroups();
  switchTo(id);
  active = id;
  try {
    return checkSync(section());
  } finally {
    active = undefined;
    switchBack(gid, groups);
  }
}

let active: Identity | undefined;

function checkSync<T>(value: T): T {
  if (value instanceof Promise) {
    // Let a rejection not go unhandled; the error below is the diagnosis.
    value.catch(() => {});
    throw new IdentityError("runAs: the section must be synchronous");
  }
  return value;
}

export { getpwnam, type PasswdEntry } from "./libc.ts";
