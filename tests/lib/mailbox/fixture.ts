// Shared pieces of the mailbox tests: a message, a temporary directory the
// test user can write, the test user's identity when running as root.

import { type MessageContent, splitContent } from "../../../lib/deliver/message.ts";
import { getpwnam } from "../../../lib/ffi/identity.ts";
import { ensureTestUser } from "../../daemons/master/instance.ts";

/** A message from text lines (header, empty line, body). */
export function message(lines: string[]): MessageContent {
  const enc = new TextEncoder();
  return splitContent(lines.map((l) => enc.encode(l)));
}

/** The test user's uid and gid when running as root, else undefined. */
export function testIdentity(): { uid: number; gid: number } | undefined {
  const name = ensureTestUser();
  if (!name) return undefined;
  const pw = getpwnam(name);
  return pw ? { uid: pw.uid, gid: pw.gid } : undefined;
}

/** A fresh temporary directory anyone may write (sticky, as /tmp). */
export function tempDir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-mailbox-" });
  Deno.chmodSync(dir, 0o1777);
  return dir;
}

/** Short lock waits so that busy-lock tests take milliseconds. */
export const fastLocks = {
  attempts: 3,
  delay: 0.01,
  sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
};
