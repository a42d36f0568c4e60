// The client side of the cleanup service protocol (the server side and the
// protocol description are in daemons/cleanup/service.ts): connect, read the
// greeting, send the request flags, read the queue id, stream records, read
// the status and reason.

import { AttrReader, encodeAttrs } from "./ipc/attr.ts";
import { encodeRecord } from "./queue/record.ts";

/** CLEANUP_FLAG_* bits a client sends (cleanup(8)'s request flags). */
export const CleanupRequestFlag = {
  /** Bounce a message refused for good instead of reporting the refusal (pickup, postsuper -r). */
  BOUNCE: 1 << 0,
  FILTER: 1 << 1,
  BCC_OK: 1 << 4,
  MAP_OK: 1 << 5,
  MILTER: 1 << 6,
  /** Detect SMTPUTF8 from the content (smtputf8_autodetect_classes names the client). */
  AUTOUTF8: 1 << 9,
} as const;

/** The flags for receive_override_options or input_transparency, as Postfix's input_transp_cleanup(). */
export function cleanupFlagsFor(options: string[]): number {
  let flags = CleanupRequestFlag.FILTER | CleanupRequestFlag.BCC_OK | CleanupRequestFlag.MAP_OK |
    CleanupRequestFlag.MILTER;
  for (const opt of options.map((o) => o.toLowerCase())) {
    if (opt === "no_address_mappings") {
      flags &= ~(CleanupRequestFlag.MAP_OK | CleanupRequestFlag.BCC_OK);
    } else if (opt === "no_header_body_checks") flags &= ~CleanupRequestFlag.FILTER;
    else if (opt === "no_milters") flags &= ~CleanupRequestFlag.MILTER;
  }
  return flags;
}

/** A cleanup connection for one message. */
export class CleanupClient {
  private reader = new AttrReader();
  private lists: Map<string, string>[] = [];
  private out: Uint8Array[] = [];
  private outBytes = 0;
  /** The queue id cleanup assigned. */
  queueId = "";

  private constructor(private readonly conn: Deno.UnixConn) {}

  /** Connects, sends the flags and reads the queue id. */
  static async open(path: string, flags: number): Promise<CleanupClient> {
    const conn = await Deno.connect({ transport: "unix", path });
    const client = new CleanupClient(conn);
    try {
      const hello = await client.attrs();
      if (hello.get("protocol") !== "cleanup") {
        throw new Error(`unexpected greeting from ${path}`);
      }
      await client.writeAll(encodeAttrs({ flags }));
      client.queueId = (await client.attrs()).get("queue_id") ?? "";
      if (!client.queueId) throw new Error(`${path}: no queue id`);
      return client;
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  private async attrs(): Promise<Map<string, string>> {
    const buf = new Uint8Array(4096);
    while (this.lists.length === 0) {
      const n = await this.conn.read(buf);
      if (n === null) throw new Error("premature end-of-input on cleanup socket");
      this.lists.push(...this.reader.push(buf.subarray(0, n)));
    }
    return this.lists.shift()!;
  }

  private async writeAll(data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) at += await this.conn.write(data.subarray(at));
  }

  /** Queues one record; records go out in batches. */
  async record(type: string, data: string | Uint8Array = ""): Promise<void> {
    const bytes = encodeRecord(type, data);
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (this.outBytes >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.outBytes === 0) return;
    const buf = new Uint8Array(this.outBytes);
    let at = 0;
    for (const part of this.out) {
      buf.set(part, at);
      at += part.length;
    }
    this.out = [];
    this.outBytes = 0;
    await this.writeAll(buf);
  }

  /** Sends what is queued and waits for cleanup's verdict. */
  async finish(): Promise<{ status: number; reason: string }> {
    await this.flush();
    const reply = await this.attrs();
    return { status: parseInt(reply.get("status") ?? "-1", 10), reason: reply.get("reason") ?? "" };
  }

  /** Drops the connection (cleanup then removes its unfinished file). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}
