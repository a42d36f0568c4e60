// The trigger client (Postfix's mail_trigger): writes a few bytes, usually
// one wake-up letter, to a service's fifo or unix socket and goes away. Used
// by the master for wakeup timers and by commands (postqueue -f, postkick).

import { closeFd, openWriteNonblocking, writeFd } from "../ffi/libc.ts";

/** Wakes a trigger service ("W" to any; qmgr also reads D, I, F, A). */
export const TRIGGER_WAKEUP = "W";

/** Writes `data` to the fifo or unix socket at `path`; throws on failure. */
export async function sendTrigger(
  path: string,
  data: string | Uint8Array,
  timeoutMs = 5000,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let isFifo = false;
  try {
    isFifo = Deno.statSync(path).isFifo ?? false;
  } catch (err) {
    throw new Deno.errors.NotFound(`connect to ${path}: ${(err as Error).message}`);
  }
  if (isFifo) {
    // Non-blocking open: with no reader the open fails at once (ENXIO) instead of hanging.
    const fd = openWriteNonblocking(path);
    try {
      writeFd(fd, new Uint8Array(bytes));
    } finally {
      closeFd(fd);
    }
    return;
  }
  const conn = await withTimeout(Deno.connect({ transport: "unix", path }), timeoutMs, path);
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  } finally {
    conn.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, path: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deno.errors.TimedOut(`connect to ${path}: timeout`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
