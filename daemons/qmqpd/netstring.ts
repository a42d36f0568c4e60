// Netstrings (`LENGTH:BYTES,`) as QMQP uses them: a reader over a client
// connection that raises Postfix's netstring exceptions (format error, size
// limit, lost connection, timeout), and the encoder for replies.

import type * as net from "node:net";

/** Why a netstring could not be read; the text is Postfix's reason wording. */
export class NetstringError extends Error {
  constructor(readonly kind: "format" | "size" | "eof" | "timeout") {
    super(
      kind === "format"
        ? "netstring format error"
        : kind === "size"
        ? "netstring length exceeds storage limit"
        : kind === "eof"
        ? "lost connection"
        : "read/write timeout",
    );
    this.name = "NetstringError";
  }
}

const encoder = new TextEncoder();

/** `LENGTH:TEXT,` */
export function encodeNetstring(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const head = encoder.encode(`${bytes.length}:`);
  const out = new Uint8Array(head.length + bytes.length + 1);
  out.set(head);
  out.set(bytes, head.length);
  out[out.length - 1] = 0x2c;
  return out;
}

/** Buffered reads from a socket with a per-read time limit; counts bytes consumed. */
export class NetstringReader {
  private chunks: Uint8Array[] = [];
  private offset = 0;
  private ended = false;
  private wake?: () => void;
  /** Bytes handed out so far. */
  consumed = 0;

  constructor(private readonly conn: net.Socket, private readonly timeoutMs: number) {
    conn.on("data", (b: Uint8Array) => {
      this.chunks.push(b);
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    conn.on("end", end);
    conn.on("close", end);
    conn.on("error", end);
  }

  private async fill(): Promise<boolean> {
    while (this.chunks.length === 0) {
      if (this.ended) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await new Promise<boolean>((resolve) => {
        this.wake = () => resolve(false);
        timer = setTimeout(() => resolve(true), this.timeoutMs);
      });
      clearTimeout(timer);
      this.wake = undefined;
      if (timedOut) throw new NetstringError("timeout");
    }
    return true;
  }

  /** One byte, or -1 at end of input. */
  async byte(): Promise<number> {
    if (!(await this.fill())) return -1;
    const chunk = this.chunks[0];
    const b = chunk[this.offset++];
    if (this.offset >= chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    this.consumed++;
    return b;
  }

  /** Exactly `n` bytes; a lost connection before that is an "eof" error. */
  async bytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      if (!(await this.fill())) throw new NetstringError("eof");
      const chunk = this.chunks[0];
      const take = Math.min(n - at, chunk.length - this.offset);
      out.set(chunk.subarray(this.offset, this.offset + take), at);
      at += take;
      this.offset += take;
      if (this.offset >= chunk.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    this.consumed += n;
    return out;
  }

  /**
   * The length and colon of a netstring. End of input is a lost connection;
   * anything but digits then a colon is a format error; a
   * length over `limit` (when > 0) is a size error.
   */
  async length(limit: number): Promise<number> {
    let len = 0;
    let digits = 0;
    for (;;) {
      const b = await this.byte();
      if (b < 0) throw new NetstringError("eof");
      if (b === 0x3a && digits > 0) break;
      if (b < 0x30 || b > 0x39) throw new NetstringError("format");
      len = len * 10 + (b - 0x30);
      digits++;
      if (len > 0x7fffffff) throw new NetstringError("size");
    }
    if (limit > 0 && len > limit) throw new NetstringError("size");
    return len;
  }

  /** The comma that ends a netstring; anything else (end of input too) is a format error. */
  async terminator(): Promise<void> {
    if ((await this.byte()) !== 0x2c) throw new NetstringError("format");
  }

  /** A whole netstring of at most `limit` bytes. */
  async netstring(limit: number): Promise<Uint8Array> {
    const len = await this.length(limit);
    const data = await this.bytes(len);
    await this.terminator();
    return data;
  }
}
