// Byte-for-byte against the reference: its master serving trivial-rewrite
// from a throwaway folder (root and Postfix needed; skipped otherwise).
// The same requests go over the same protocol to both services; the
// greeting and every reply must be the same bytes, and Posthorn's client
// library must get the golden answers from the reference's service.

import { assertEquals } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import {
  closeRewriteClients,
  resolveAddress,
  rewriteAddress,
} from "../../../lib/rewrite_client.ts";
import { formatAnswer, GOLDEN_DIR, readCases, requestOf } from "./cases.ts";
import { startService } from "./instance.ts";
import { canRunReferenceInstance, startReferenceInstance } from "./reference.ts";
import { encodeAttrs } from "../../../lib/ipc/attr.ts";

/** Sends each request and collects each reply's raw bytes (one list per reply). */
async function rawExchange(socket: string, requests: Record<string, string>[]): Promise<string[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const dec = new TextDecoder();
  const buf = new Uint8Array(65536);
  let pending = "";
  const next = async (): Promise<string> => {
    // A list ends at an empty name: NUL right after a value's NUL, or at the start.
    for (;;) {
      const end = endOfList(pending);
      if (end >= 0) {
        const list = pending.slice(0, end);
        pending = pending.slice(end);
        return list;
      }
      const n = await conn.read(buf);
      if (n === null) throw new Error("connection closed");
      pending += dec.decode(buf.subarray(0, n));
    }
  };
  try {
    const out = [await next()];
    for (const r of requests) {
      await conn.write(encodeAttrs(r));
      out.push(await next());
    }
    return out;
  } finally {
    conn.close();
  }
}

/** Length of the first complete attribute list in `text`, or -1. */
function endOfList(text: string): number {
  let at = 0;
  for (;;) {
    const nameEnd = text.indexOf("\0", at);
    if (nameEnd < 0) return -1;
    if (nameEnd === at) return at + 1;
    const valueEnd = text.indexOf("\0", nameEnd + 1);
    if (valueEnd < 0) return -1;
    at = valueEnd + 1;
  }
}

Deno.test({
  name: "the greeting and every reply are the reference's bytes; the client reads the reference",
  ignore: !canRunReferenceInstance(),
  async fn() {
    const cases = readCases("basic");
    const requests = cases.queries.map(requestOf);
    const ref = await startReferenceInstance(cases.mainCf);
    const ours = await startService(cases.mainCf);
    try {
      const [refBytes, ourBytes] = await Promise.all([
        rawExchange(ref.socket, requests),
        rawExchange(ours.socket, requests),
      ]);
      assertEquals(ourBytes, refBytes);
      const config = configFromText(ref.dir, `queue_directory = ${ref.dir}/queue\n`);
      const answers = await Promise.all(cases.queries.map(async (q) => {
        if (q.request === "rewrite") {
          return formatAnswer(
            q,
            new Map([["address", await rewriteAddress(config, q.second, q.address)]]),
          );
        }
        const r = await resolveAddress(config, q.second, q.address);
        return formatAnswer(q, new Map(Object.entries(r).map(([k, v]) => [k, String(v)])));
      }));
      const golden = Deno.readTextFileSync(`${GOLDEN_DIR}basic.ref`).trimEnd().split("\n");
      // verify queries go through resolveAddress here: same answers with default settings.
      assertEquals(answers, golden.map((l) => l.replace(/^verify\t/, "verify\t")));
    } finally {
      closeRewriteClients();
      await ours.stop();
      await Deno.remove(ours.dir, { recursive: true });
      await ref.stop();
    }
  },
});
