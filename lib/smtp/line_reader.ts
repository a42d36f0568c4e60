// The SMTP input side: bytes from a socket (or standard input) in, CRLF- or
// LF-ended lines and counted byte ranges (BDAT) out, with a line length
// limit, a read timeout and flow control. No web streams: the owner pushes
// chunks from its 'data' handler and awaits lines.

/** One input line without its line ending. */
export interface InputLine {
  /** The bytes of the line (at most the limit asked for). */
  bytes: Uint8Array;
  /** False when the line was longer than the limit: the rest follows in the next read. */
  complete: boolean;
}

/** The peer sent nothing for the whole read timeout. */
export class ReadTimeout extends Error {
  constructor() {
    super("read timeout");
    this.name = "ReadTimeout";
  }
}

/** Flow control hooks: stop and restart the producer. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

const HIGH_WATER = 1 << 20;

/** Buffers pushed bytes and hands them out as lines or byte counts. */
export class LineReader {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private ended = false;
  private paused = false;
  private wake: (() => void) | undefined;
  /** Milliseconds a read may wait for input; 0 waits for ever. */
  timeoutMs = 0;

  constructor(private readonly flow?: FlowControl) {}

  /** Adds bytes from the peer. */
  push(chunk: Uint8Array): void {
    if (this.start >= this.buf.length) {
      this.buf = chunk;
      this.start = 0;
    } else {
      const rest = this.buf.length - this.start;
      const merged = new Uint8Array(rest + chunk.length);
      merged.set(this.buf.subarray(this.start));
      merged.set(chunk, rest);
      this.buf = merged;
      this.start = 0;
    }
    if (this.buffered() > HIGH_WATER && this.flow && !this.paused) {
      this.paused = true;
      this.flow.pause();
    }
    this.wake?.();
  }

  /** The peer closed its side (or the connection is gone). */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** Whether the peer has closed. */
  get atEnd(): boolean {
    return this.ended && this.buffered() === 0;
  }

  /** Bytes received and not yet read (pipelined input). */
  buffered(): number {
    return this.buf.length - this.start;
  }

  /** Up to `n` buffered bytes, left in place. */
  peek(n: number): Uint8Array {
    return this.buf.subarray(this.start, Math.min(this.buf.length, this.start + n));
  }

  /** Drops everything buffered (input after a fatal reply). */
  discard(): void {
    this.buf = new Uint8Array(0);
    this.start = 0;
  }

  private consume(n: number): Uint8Array {
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    if (this.paused && this.buffered() < HIGH_WATER / 2) {
      this.paused = false;
      this.flow?.resume();
    }
    return out;
  }

  /** Waits for more input; false at end of input, ReadTimeout after the timeout. */
  private wait(): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
      if (this.timeoutMs > 0) {
        timer = setTimeout(() => {
          this.wake = undefined;
          reject(new ReadTimeout());
        }, this.timeoutMs);
      }
    });
  }

  /**
   * The next line (CRLF or bare LF ended, the ending removed), at most
   * `limit` bytes; null at end of input. A last line without an ending is
   * returned as complete when the input ends.
   */
  async readLine(limit: number): Promise<InputLine | null> {
    for (;;) {
      const avail = this.buffered();
      const nl = this.buf.indexOf(10, this.start);
      if (nl >= 0 && nl - this.start <= limit) {
        let end = nl;
        if (end > this.start && this.buf[end - 1] === 13) end--;
        const bytes = this.buf.subarray(this.start, end);
        this.consume(nl + 1 - this.start);
        return { bytes, complete: true };
      }
      if (avail > limit) {
        // Keep a CR that may be the first half of the line ending together with it.
        let n = limit;
        if (this.buf[this.start + n - 1] === 13 && n > 1) n--;
        return { bytes: this.consume(n), complete: false };
      }
      if (this.ended) {
        if (avail === 0) return null;
        return { bytes: this.consume(avail), complete: true };
      }
      if (!(await this.wait()) && this.buffered() === 0) return null;
    }
  }

  /** Up to `max` bytes (at least one unless the input ended); null at end of input. */
  async readBytes(max: number): Promise<Uint8Array | null> {
    while (this.buffered() === 0) {
      if (this.ended) return null;
      if (!(await this.wait()) && this.buffered() === 0) return null;
    }
    return this.consume(Math.min(max, this.buffered()));
  }
}
