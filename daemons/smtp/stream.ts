// One client connection to an SMTP or LMTP server: node:net (or node:tls
// after STARTTLS) underneath, replies read through lib/smtp's LineReader with
// a cap on the reply line length (the excess is read and dropped, as Postfix
// truncates long replies), and a timeout on every read and write.

import * as net from "node:net";
import * as tls from "node:tls";
import { LineReader, ReadTimeout } from "../../lib/smtp/line_reader.ts";
import { connectInet, dupFd, LibcError, strerror } from "../../lib/ffi/libc.ts";

/** One server reply: the code (0 when the server sent no valid code) and its text lines. */
export interface ServerReply {
  code: number;
  /** The enhanced status code, or "" when the reply has none. */
  dsn: string;
  /** The text lines without code and separator. */
  lines: string[];
  /** The reply on one line as log text quotes it: `550 5.1.1 <a@b>: no such user`. */
  text: string;
}

/** The server closed the connection (or it broke). */
export class LostConnection extends Error {
  constructor() {
    super("lost connection");
    this.name = "LostConnection";
  }
}

/** A read or write took longer than its timeout. */
export class ConversationTimeout extends Error {
  constructor() {
    super("timeout");
    this.name = "ConversationTimeout";
  }
}

/** Most lines in one multi-line reply; more is treated as a broken server. */
const MAX_REPLY_LINES = 1000;

/** A connected SMTP/LMTP stream. */
export class SmtpStream {
  private reader: LineReader;
  private closed = false;
  private onData = (chunk: Uint8Array) => this.reader.push(chunk);
  private onEnd = () => {
    this.closed = true;
    this.reader.end();
  };

  /** smtp_reply_filter: each reply line replaced before it is parsed. */
  filter?: (line: string) => Promise<string>;
  /** The connection's descriptor when the client made it (connectTcp): it can be cached. */
  fd?: number;

  /** Whether the connection is over (closed by either side, or broken). */
  get ended(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /** Whether the session runs over TLS (STARTTLS or wrapper mode). */
  get encrypted(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  constructor(public socket: net.Socket, private readonly lineLimit: number) {
    this.reader = this.attach(socket);
  }

  private attach(socket: net.Socket): LineReader {
    const reader = new LineReader({ pause: () => socket.pause(), resume: () => socket.resume() });
    socket.setNoDelay?.(true);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
    socket.on("error", this.onEnd);
    return reader;
  }

  /** Bytes the server sent ahead of our reading them (a server that talks before its turn). */
  pending(): number {
    return this.reader.buffered();
  }

  /** Reads one reply; throws LostConnection or ConversationTimeout. */
  async readReply(timeoutMs: number): Promise<ServerReply> {
    this.reader.timeoutMs = timeoutMs;
    const lines: string[] = [];
    const raw: string[] = [];
    let code = 0;
    let garbage = 0;
    for (;;) {
      let line = await this.readLine();
      if (this.filter) line = await this.filter(line);
      const m = /^(\d{3})([ -]|$)(.*)$/s.exec(line);
      if (!m) {
        // Not a reply line: skipped, as Postfix does (the read timeout ends
        // a server that sends nothing else). A flood of them ends the reply
        // with no valid code.
        if (++garbage < MAX_REPLY_LINES) continue;
        lines.push(line);
        raw.push(line);
        code = 0;
        break;
      }
      code = Number(m[1]);
      lines.push(m[3]);
      raw.push(line);
      if (m[2] !== "-" || lines.length >= MAX_REPLY_LINES) break;
    }
    return makeReply(code, lines, raw);
  }

  /** One line, at most lineLimit bytes kept. */
  private async readLine(): Promise<string> {
    let first: Uint8Array | undefined;
    for (;;) {
      let got;
      try {
        // The excess of an overlong line is drained in big pieces and dropped.
        got = await this.reader.readLine(first ? 1 << 20 : this.lineLimit);
      } catch (err) {
        if (err instanceof ReadTimeout) throw new ConversationTimeout();
        throw err;
      }
      if (!got) throw new LostConnection();
      first ??= got.bytes.slice();
      if (got.complete) break;
    }
    return new TextDecoder().decode(first);
  }

  /** Writes bytes, waiting until the kernel took them or the timeout passed. */
  write(data: string | Uint8Array, timeoutMs: number): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.reject(new LostConnection());
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off("close", onClose);
        if (err) reject(err);
        else resolve();
      };
      const onClose = () => settle(new LostConnection());
      this.socket.once("close", onClose);
      if (timeoutMs > 0) timer = setTimeout(() => settle(new ConversationTimeout()), timeoutMs);
      this.socket.write(data, (err) => settle(err ? new LostConnection() : undefined));
    });
  }

  /** Moves the stream onto TLS (after the server's 220 to STARTTLS); returns the TLS socket. */
  async startTls(options: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.off("data", this.onData);
    plain.off("end", this.onEnd);
    plain.off("close", this.onEnd);
    plain.off("error", this.onEnd);
    // The TLS socket reports what goes wrong; the one beneath must not throw.
    plain.on("error", () => {});
    // Anything the server sent after its 220 and before the handshake is
    // discarded (the plaintext command injection problem).
    this.reader.discard();
    const secure = tls.connect({ ...options, socket: plain });
    await new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        secure.off("secureConnect", ok);
        secure.off("error", fail);
        if (err) reject(err);
        else resolve();
      };
      const ok = () => done();
      const fail = (err: Error) => done(err);
      secure.once("secureConnect", ok);
      secure.once("error", fail);
      if (timeoutMs > 0) timer = setTimeout(() => done(new ConversationTimeout()), timeoutMs);
    });
    this.socket = secure;
    this.closed = false;
    this.reader = this.attach(secure);
    return secure;
  }

  /**
   * Lets go of the socket but not of the connection, so that the session can
   * be handed to the connection cache: returns a duplicate descriptor, and
   * the socket (with the read it always has pending) is closed first, so
   * that a reply meant for the session's next user is never read here.
   */
  async detach(): Promise<number> {
    const dup = dupFd(this.fd!);
    const old = this.socket;
    old.off("data", this.onData);
    old.off("end", this.onEnd);
    old.off("close", this.onEnd);
    old.off("error", this.onEnd);
    old.on("error", () => {});
    old.destroy();
    // The close takes effect on the event loop's next turn.
    await new Promise((r) => setTimeout(r, 0));
    return dup;
  }

  /** Takes up a descriptor from detach() again (the cache did not take it). */
  reattach(fd: number): void {
    const socket = new net.Socket({ fd, readable: true, writable: true });
    this.socket = socket;
    this.fd = fd;
    this.closed = false;
    this.reader = this.attach(socket);
  }

  /** Closes the connection at once. */
  close(): void {
    this.closed = true;
    try {
      this.socket.destroy();
    } catch {
      // Already gone.
    }
  }
}

/**
 * A reply from its code and text lines, with the final line's enhanced code. The one-line text keeps each line whole, codes included
 * (`550-5.1.1 first 550 5.1.1 last`), as Postfix logs multi-line replies.
 */
export function makeReply(code: number, lines: string[], raw?: string[]): ServerReply {
  // The final line's enhanced code counts, as Postfix reads multi-line replies.
  const last = lines[lines.length - 1] ?? "";
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/.exec(last);
  let dsn = "";
  if (m && String(code)[0] === m[1]) dsn = `${m[1]}.${m[2]}.${m[3]}`;
  const text = raw
    ? raw.join(" ")
    : code
    ? `${code} ${lines.join(" ")}`.trimEnd()
    : lines.join(" ");
  return { code, dsn, lines, text };
}

/** Connects a TCP or unix-domain socket; rejects with the system's error text. */
export function connectSocket(
  target: { host: string; port: number; localAddress?: string } | { path: string },
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target ? net.connect({ path: target.path }) : net.connect({
      host: target.host,
      port: target.port,
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off("connect", ok);
      socket.off("error", fail);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const ok = () => done();
    const fail = (err: Error) => done(new Error(systemErrorText(err)));
    socket.once("connect", ok);
    socket.once("error", fail);
    if (timeoutMs > 0) {
      timer = setTimeout(() => done(new Error("Connection timed out")), timeoutMs);
    }
  });
}

/**
 * Connects to a numeric TCP address with a descriptor the client owns (so
 * the session can be handed to the connection cache) and wraps it as a
 * node:net socket; rejects with the system's error text.
 */
export async function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  localAddress?: string,
): Promise<{ socket: net.Socket; fd: number }> {
  let fd: number;
  try {
    fd = await connectInet(host, port, timeoutMs, localAddress);
  } catch (err) {
    throw new Error(err instanceof LibcError ? strerror(err.errno) : (err as Error).message);
  }
  return { socket: new net.Socket({ fd, readable: true, writable: true }), fd };
}

/** The strerror(3) wording Postfix's %m prints for a socket error. */
export function systemErrorText(err: Error): string {
  const code = (err as { code?: string }).code ?? "";
  const texts: Record<string, string> = {
    ECONNREFUSED: "Connection refused",
    ETIMEDOUT: "Connection timed out",
    EHOSTUNREACH: "No route to host",
    ENETUNREACH: "Network is unreachable",
    ENOENT: "No such file or directory",
    EACCES: "Permission denied",
    ECONNRESET: "Connection reset by peer",
    EADDRNOTAVAIL: "Cannot assign requested address",
  };
  return texts[code] ?? err.message;
}
