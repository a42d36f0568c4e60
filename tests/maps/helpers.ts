// Shared test helpers for the table tests: temporary folders and captured warnings.
import { captureLog } from "../../lib/log.ts";

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-maps-" });
  return { dir, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}

/** Runs `fn` with log lines captured; returns them with fn's result. */
export async function withLog<T>(fn: () => T | Promise<T>): Promise<{ result: T; log: string[] }> {
  const log: string[] = [];
  captureLog((line) => log.push(line));
  try {
    const result = await fn();
    return { result, log };
  } finally {
    captureLog(undefined);
  }
}

/** Whether the reference Postfix's postmap is installed. */
export function referenceInstalled(): boolean {
  try {
    Deno.statSync("/usr/sbin/postmap");
    return true;
  } catch {
    return false;
  }
}
