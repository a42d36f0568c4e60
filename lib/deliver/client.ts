// The queue manager's side of the delivery request protocol (request.ts):
// connect to private/TRANSPORT, send one request, wait for the reply.

import { AttrReader, encodeAttrs } from "../ipc/attr.ts";
import { type DeliverReply, type DeliverRequest, parseReply, requestLists } from "./request.ts";

/** Sends `req` to the agent listening at `path`; rejects when the agent fails to answer. */
export async function sendDeliverRequest(
  path: string,
  req: DeliverRequest,
  timeoutMs = 0,
): Promise<DeliverReply> {
  const conn = await Deno.connect({ transport: "unix", path });
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (timeoutMs > 0) timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const parts = requestLists(req).map((l) => encodeAttrs(l));
    let size = 0;
    for (const p of parts) size += p.length;
    const buf = new Uint8Array(size);
    let at = 0;
    for (const p of parts) buf.set(p, at), at += p.length;
    for (let off = 0; off < buf.length;) off += await conn.write(buf.subarray(off));
    const reader = new AttrReader();
    const chunk = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error(`${path}: premature end-of-input from delivery agent`);
      const lists = reader.push(chunk.subarray(0, n));
      if (lists.length) return parseReply(lists[0]);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}
