// The few libc calls Deno has no API for: creating listening sockets and
// fifos the master hands to its children, clearing close-on-exec, polling raw
// descriptors, reading and writing pipes. Linux x86_64/aarch64 (glibc or musl)
// constants; every call reports failure as a LibcError carrying errno.

import { openLibc, readErrno } from "./open.ts";

/** A failed libc call: the call's name and errno, with strerror's text. */
export class LibcError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${strerror(errno)}`);
    this.name = "LibcError";
  }
}

// Linux values (asm-generic); the same on x86_64 and aarch64.
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const POLLIN = 1;
export const POLLOUT = 4;
export const POLLERR = 8;
export const POLLHUP = 16;
export const EINTR = 4;
export const EAGAIN = 11;
export const ENOENT = 2;
export const EADDRINUSE = 98;

const symbols = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  pollAsync: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  dup: { parameters: ["i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  getpwnam: { parameters: ["buffer"], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];
let libc: Libc | undefined;

/** Opens libc once, on first use (so importing this module costs nothing). */
function lib(): Libc {
  return libc ??= openLibc(symbols);
}

function errno(): number {
  return readErrno(lib().__errno_location);
}

/** strerror(3): "Address already in use" for EADDRINUSE. */
export function strerror(code: number): string {
  const ptr = lib().strerror(code);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `errno ${code}`;
}

function check(call: string, result: number | bigint): number {
  const n = Number(result);
  if (n < 0) throw new LibcError(call, errno());
  return n;
}

const encoder = new TextEncoder();

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(text);
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes);
  return buf;
}

/** struct sockaddr_un for `path` (at most 107 bytes, as the kernel allows). */
function sockaddrUn(path: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(path);
  if (bytes.length > 107) throw new LibcError("bind", 36 /* ENAMETOOLONG */);
  const buf = new Uint8Array(2 + 108);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(bytes, 2);
  return buf;
}

/** struct sockaddr_in / sockaddr_in6 for a numeric address. */
function sockaddrInet(
  address: string,
  port: number,
): { family: number; addr: Uint8Array<ArrayBuffer> } {
  if (address.includes(":")) {
    const buf = new Uint8Array(28);
    const view = new DataView(buf.buffer);
    view.setUint16(0, AF_INET6, true);
    view.setUint16(2, port, false);
    buf.set(parseIpv6(address), 8);
    return { family: AF_INET6, addr: buf };
  }
  const parts = address.split(".").map((p) => parseInt(p, 10));
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`bad IPv4 address: ${address}`);
  }
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  buf.set(parts, 4);
  return { family: AF_INET, addr: buf };
}

/** The 16 bytes of an IPv6 address (with `::` and an embedded IPv4 tail). */
export function parseIpv6(address: string): Uint8Array {
  let text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = v4[1].split(".").map(Number);
    tail.push((p[0] << 8) | p[1], (p[2] << 8) | p[3]);
    text = text.slice(0, -v4[1].length) + "0:0";
  }
  const [head, rest] = text.split("::");
  const words = (s: string | undefined) => s ? s.split(":").filter((w) => w !== "") : [];
  const front = words(head).map((w) => parseInt(w, 16));
  const back = words(rest).map((w) => parseInt(w, 16));
  const fill = rest === undefined ? 0 : 8 - front.length - back.length;
  const all = [...front, ...Array(Math.max(fill, 0)).fill(0), ...back];
  if (v4) all.splice(6, 2, ...tail);
  if (all.length !== 8 || all.some((w) => !(w >= 0 && w <= 0xffff))) {
    throw new Error(`bad IPv6 address: ${address}`);
  }
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function setReuseAddr(fd: number): void {
  const one = new Int32Array([1]);
  check("setsockopt", lib().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4));
}

/** Closes `fd`, ignoring errors (EBADF on an already closed descriptor). */
export function closeFd(fd: number): void {
  if (fd >= 0) lib().close(fd);
}

/**
 * Creates a listening UNIX-domain socket at `path`, replacing an old socket
 * file. The socket is bound under a temporary name beside `path`, made to
 * listen, then renamed into place: a client never finds the name before the
 * socket accepts connections (between bind(2) and listen(2) it would be
 * refused).
 */
export function listenUnix(path: string, backlog: number, type = SOCK_STREAM): number {
  const fd = check("socket", lib().socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  const slash = path.lastIndexOf("/");
  let temp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.${Deno.pid}`;
  if (encoder.encode(temp).length > 107) temp = path;
  try {
    try {
      Deno.removeSync(temp);
    } catch {
      // Nothing to remove: the usual case.
    }
    const addr = sockaddrUn(temp);
    check("bind", lib().bind(fd, addr, addr.length));
    if (type === SOCK_STREAM) check("listen", lib().listen(fd, backlog));
    if (temp !== path) Deno.renameSync(temp, path);
    return fd;
  } catch (err) {
    closeFd(fd);
    if (temp !== path) {
      try {
        Deno.removeSync(temp);
      } catch {
        // Never bound.
      }
    }
    throw err;
  }
}

/** Creates a listening TCP socket on a numeric `address` and `port` (SO_REUSEADDR). */
export function listenInet(address: string, port: number, backlog: number): number {
  const { family, addr } = sockaddrInet(address, port);
  const fd = check("socket", lib().socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  try {
    setReuseAddr(fd);
    if (family === AF_INET6) {
      // Postfix binds IPv4 and IPv6 separately: an IPv6 socket serves IPv6 only.
      const one = new Int32Array([1]);
      check("setsockopt", lib().setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4));
    }
    check("bind", lib().bind(fd, addr, addr.length));
    check("listen", lib().listen(fd, backlog));
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/** The TCP port a socket is bound to (after binding port 0). */
export function localPort(fd: number): number {
  const addr = new Uint8Array(128);
  const len = new Uint32Array([128]);
  check("getsockname", lib().getsockname(fd, addr, new Uint8Array(len.buffer)));
  return new DataView(addr.buffer).getUint16(2, false);
}

/** Creates (if needed) the fifo at `path` and opens it read-write, non-blocking. */
export function openFifo(path: string, mode: number): number {
  const name = cString(path);
  try {
    const st = Deno.lstatSync(path);
    if (!st.isFifo) Deno.removeSync(path);
  } catch {
    // Absent: created below.
  }
  const made = lib().mkfifo(name, mode);
  if (made < 0 && errno() !== 17 /* EEXIST */) throw new LibcError("mkfifo", errno());
  Deno.chmodSync(path, mode);
  // O_RDWR: the master's own writer end keeps the fifo from reporting EOF.
  return check("open", lib().open(name, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0));
}

/** Opens `path` for writing without blocking (fifo triggers). */
export function openWriteNonblocking(path: string): number {
  return check("open", lib().open(cString(path), O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0));
}

/** Sets or clears close-on-exec on `fd`. */
export function setCloseOnExec(fd: number, on: boolean): void {
  const flags = check("fcntl", lib().fcntl(fd, F_GETFD, 0));
  const want = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  check("fcntl", lib().fcntl(fd, F_SETFD, want));
}

/** Sets or clears O_NONBLOCK on `fd`. */
export function setNonblocking(fd: number, on: boolean): void {
  const flags = check("fcntl", lib().fcntl(fd, F_GETFL, 0));
  const want = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  check("fcntl", lib().fcntl(fd, F_SETFL, want));
}

/** Whether `fd` is an open descriptor. */
export function isOpen(fd: number): boolean {
  return lib().fcntl(fd, F_GETFD, 0) >= 0;
}

/** pipe2(2): [read end, write end], close-on-exec (cleared later for a child's copy). */
export function makePipe(nonblocking = true): [number, number] {
  const fds = new Int32Array(2);
  const flags = O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0);
  check("pipe2", lib().pipe2(new Uint8Array(fds.buffer), flags));
  return [fds[0], fds[1]];
}

/** dup(2), close-on-exec cleared as dup leaves it. */
export function dupFd(fd: number): number {
  return check("dup", lib().dup(fd));
}

/** read(2) into `buf`; 0 at end of file, -1 when nothing is ready (EAGAIN). */
export function readFd(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(lib().read(fd, buf, BigInt(buf.length)));
    if (n >= 0) return n;
    const code = errno();
    if (code === EINTR) continue;
    if (code === EAGAIN) return -1;
    throw new LibcError("read", code);
  }
}

/** write(2) of all of `data`; -1 when the descriptor would block (EAGAIN). */
export function writeFd(fd: number, data: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(lib().write(fd, data, BigInt(data.length)));
    if (n >= 0) return n;
    const code = errno();
    if (code === EINTR) continue;
    if (code === EAGAIN) return -1;
    throw new LibcError("write", code);
  }
}

/** accept4(2) without the peer address, non-blocking and close-on-exec; -1 on EAGAIN. */
export function acceptFd(fd: number): number {
  const n = lib().accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (n >= 0) return n;
  const code = errno();
  if (code === EAGAIN || code === EINTR) return -1;
  throw new LibcError("accept", code);
}

/** One descriptor to watch and, after polling, what happened to it. */
export interface PollFd {
  fd: number;
  events: number;
  revents?: number;
}

function pollBuffer(fds: PollFd[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(8 * fds.length);
  const view = new DataView(buf.buffer);
  fds.forEach((p, i) => {
    view.setInt32(8 * i, p.fd, true);
    view.setInt16(8 * i + 4, p.events, true);
  });
  return buf;
}

function pollResults(fds: PollFd[], buf: Uint8Array<ArrayBuffer>): void {
  const view = new DataView(buf.buffer);
  fds.forEach((p, i) => p.revents = view.getInt16(8 * i + 6, true));
}

/** poll(2) without blocking the event loop: runs on a worker thread. */
export async function pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
  const buf = pollBuffer(fds);
  const n = await lib().pollAsync(buf, BigInt(fds.length), timeoutMs);
  // errno is per thread and the call ran on another one: report EINTR-like 0.
  if (n < 0) return 0;
  pollResults(fds, buf);
  return n;
}

/** poll(2) synchronously (timeout 0 to test readiness). */
export function pollSync(fds: PollFd[], timeoutMs: number): number {
  const buf = pollBuffer(fds);
  const n = lib().poll(buf, BigInt(fds.length), timeoutMs);
  if (n < 0) {
    if (errno() === EINTR) return 0;
    throw new LibcError("poll", errno());
  }
  pollResults(fds, buf);
  return n;
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * Opens (creating, mode 0644) `path` and takes an exclusive flock without
 * waiting; the descriptor holds the lock until it is closed or the process
 * ends. Throws LibcError (EAGAIN) when another process holds it.
 */
export function lockFile(path: string): number {
  const O_CREAT = 0o100;
  const fd = check("open", lib().open(cString(path), O_RDWR | O_CREAT | O_CLOEXEC, 0o644));
  if (lib().flock(fd, LOCK_EX | LOCK_NB) < 0) {
    const code = errno();
    closeFd(fd);
    throw new LibcError("flock", code);
  }
  return fd;
}

/** Whether some process holds the lock on `path` (false when it does not exist). */
export function isLocked(path: string): boolean {
  let fd: number;
  try {
    fd = lockFile(path);
  } catch (err) {
    if (err instanceof LibcError && err.errno === EAGAIN) return true;
    return false;
  }
  closeFd(fd);
  return false;
}

/** Replaces the content of the open file `fd` with `text`. */
export function rewriteFd(fd: number, text: string): void {
  check("ftruncate", lib().ftruncate(fd, 0n));
  const data = encoder.encode(text);
  // pwrite is not needed: the descriptor was never written, its offset is 0.
  writeFd(fd, data);
}

/** A passwd entry: getpwnam(3)'s uid, gid and home directory. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  dir: string;
}

/** getpwnam(3) (NSS-aware), or undefined when the user does not exist. */
export function getpwnam(name: string): PasswdEntry | undefined {
  const ptr = lib().getpwnam(cString(name));
  if (!ptr) return undefined;
  const view = new Deno.UnsafePointerView(ptr);
  // struct passwd on LP64: name, passwd, uid, gid, gecos, dir, shell.
  const dirPtr = view.getPointer(32);
  return {
    name,
    uid: view.getUint32(16),
    gid: view.getUint32(20),
    dir: dirPtr ? Deno.UnsafePointerView.getCString(dirPtr) : "/",
  };
}

/** A unix-dgram socket connected to `path`, for sending datagrams again and again (syslog). */
export function connectDatagram(path: string): number {
  const fd = check("socket", lib().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  try {
    const addr = sockaddrUn(path);
    check("connect", lib().connect(fd, addr, addr.length));
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/** Sends one datagram to the unix-dgram socket at `path` (postlog-style clients). */
export function sendDatagram(path: string, data: Uint8Array<ArrayBuffer>): void {
  const fd = check("socket", lib().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  try {
    const addr = sockaddrUn(path);
    check("connect", lib().connect(fd, addr, addr.length));
    if (writeFd(fd, data) < 0) throw new LibcError("write", EAGAIN);
  } finally {
    closeFd(fd);
  }
}

const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * A struct msghdr (LP64) with one one-byte iovec and room for one descriptor
 * in an SCM_RIGHTS control message; the buffers stay referenced by the caller.
 */
function fdMessage(): {
  msg: Uint8Array<ArrayBuffer>;
  data: Uint8Array<ArrayBuffer>;
  control: Uint8Array<ArrayBuffer>;
  keep: unknown[];
} {
  const data = new Uint8Array(1);
  const iov = new Uint8Array(16);
  const control = new Uint8Array(24); // CMSG_SPACE(sizeof(int))
  const msg = new Uint8Array(56);
  const ptr = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  const iv = new DataView(iov.buffer);
  iv.setBigUint64(0, ptr(data), true);
  iv.setBigUint64(8, 1n, true);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, ptr(iov), true); // msg_iov
  mv.setBigUint64(24, 1n, true); // msg_iovlen
  mv.setBigUint64(32, ptr(control), true); // msg_control
  mv.setBigUint64(40, BigInt(control.length), true); // msg_controllen
  return { msg, data, control, keep: [iov] };
}

/** Sends descriptor `fd` over the connected unix socket `sock` (SCM_RIGHTS, one data byte). */
export function sendFd(sock: number, fd: number): void {
  const m = fdMessage();
  const cv = new DataView(m.control.buffer);
  cv.setBigUint64(0, 20n, true); // CMSG_LEN(sizeof(int))
  cv.setInt32(8, SOL_SOCKET, true);
  cv.setInt32(12, SCM_RIGHTS, true);
  cv.setInt32(16, fd, true);
  check("sendmsg", lib().sendmsg(sock, m.msg, 0));
  void m.keep;
}

/** Receives one descriptor sent with sendFd(); -1 when the peer sent none (or closed). */
export function recvFd(sock: number): number {
  const m = fdMessage();
  const n = Number(lib().recvmsg(sock, m.msg, MSG_CMSG_CLOEXEC));
  void m.keep;
  if (n < 0) {
    const code = errno();
    if (code === EAGAIN || code === EINTR) return -1;
    throw new LibcError("recvmsg", code);
  }
  const cv = new DataView(m.control.buffer);
  const controllen = Number(new DataView(m.msg.buffer).getBigUint64(40, true));
  if (
    controllen < 20 || cv.getInt32(8, true) !== SOL_SOCKET || cv.getInt32(12, true) !== SCM_RIGHTS
  ) {
    return -1;
  }
  return cv.getInt32(16, true);
}

/** Connects a unix stream socket to `path` (blocking connect; local sockets answer at once). */
export function connectUnix(path: string): number {
  const fd = check("socket", lib().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  try {
    const addr = sockaddrUn(path);
    check("connect", lib().connect(fd, addr, addr.length));
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

const SO_ERROR = 4;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const EINPROGRESS = 115;
const ETIMEDOUT = 110;

/**
 * Connects a TCP socket to a numeric `address` and `port` without blocking
 * the event loop: a non-blocking connect(2), poll(2) for writability on a
 * worker thread (at most `timeoutMs`, 0: no limit), then SO_ERROR. The
 * descriptor is the caller's: non-blocking, close-on-exec, TCP_NODELAY,
 * bound first to `localAddress` when one is given (port 0). Throws
 * LibcError (connect: "Connection refused", ETIMEDOUT on the time limit).
 */
export async function connectInet(
  address: string,
  port: number,
  timeoutMs: number,
  localAddress?: string,
): Promise<number> {
  const { family, addr } = sockaddrInet(address, port);
  const fd = check("socket", lib().socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    if (localAddress) {
      const local = sockaddrInet(localAddress, 0);
      if (local.family !== family) throw new LibcError("bind", 97 /* EAFNOSUPPORT */);
      check("bind", lib().bind(fd, local.addr, local.addr.length));
    }
    const one = new Int32Array([1]);
    check("setsockopt", lib().setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4));
    if (lib().connect(fd, addr, addr.length) < 0) {
      const code = errno();
      if (code !== EINPROGRESS && code !== EINTR) throw new LibcError("connect", code);
      const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
      for (;;) {
        const left = deadline === Infinity ? -1 : Math.max(0, deadline - Date.now());
        const p = [{ fd, events: POLLOUT }];
        const n = await pollAsync(p, left);
        if (n > 0) break;
        if (Date.now() >= deadline) throw new LibcError("connect", ETIMEDOUT);
      }
      const err = new Int32Array([0]);
      const len = new Uint32Array([4]);
      check(
        "getsockopt",
        lib().getsockopt(
          fd,
          SOL_SOCKET,
          SO_ERROR,
          new Uint8Array(err.buffer),
          new Uint8Array(len.buffer),
        ),
      );
      if (err[0] !== 0) throw new LibcError("connect", err[0]);
    }
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}
