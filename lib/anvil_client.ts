// The client side of anvil(8), the connection and rate limiter: one
// attribute-list request per event (connect, disconnect, message, recipient,
// lookup) over private/anvil, each answered with status and the counter the
// event touched. The connection is kept open for the life of the process.

import * as net from "node:net";
import { AttrReader, encodeAttrs } from "./ipc/attr.ts";

/** anvil's answer: the current count and the rate for the client's window. */
export interface AnvilReply {
  status: number;
  count: number;
  rate: number;
}

/** A persistent connection to anvil. */
export class AnvilClient {
  private socket?: net.Socket;
  private reader = new AttrReader();
  private queue: ((reply: Map<string, string> | null) => void)[] = [];
  private connecting?: Promise<void>;

  constructor(readonly path: string) {}

  private connect(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const s = net.connect({ path: this.path });
      s.once("connect", () => {
        this.socket = s;
        resolve();
      });
      s.on("data", (b: Uint8Array) => {
        for (const list of this.reader.push(b)) this.queue.shift()?.(list);
      });
      const gone = (err?: Error) => {
        this.socket = undefined;
        this.connecting = undefined;
        this.reader = new AttrReader();
        for (const q of this.queue.splice(0)) q(null);
        if (err) reject(err);
      };
      s.on("error", gone);
      s.on("close", () => gone());
    });
    return this.connecting;
  }

  private async request(attrs: Record<string, string>): Promise<AnvilReply> {
    await this.connect();
    const reply = await new Promise<Map<string, string> | null>((resolve) => {
      this.queue.push(resolve);
      this.socket!.write(encodeAttrs(attrs));
    });
    if (!reply) throw new Error(`${this.path}: connection closed`);
    return {
      status: Number(reply.get("status") ?? "-1"),
      count: Number(reply.get("count") ?? "0"),
      rate: Number(reply.get("rate") ?? "0"),
    };
  }

  /** A new connection from `ident` (`service:address`): its concurrency and rate. */
  connectEvent(ident: string): Promise<AnvilReply> {
    return this.request({ request: "connect", ident });
  }

  /** The connection from `ident` ended. */
  disconnectEvent(ident: string): Promise<AnvilReply> {
    return this.request({ request: "disconnect", ident });
  }

  /** A message (MAIL FROM) from `ident`: its message rate. */
  messageEvent(ident: string): Promise<AnvilReply> {
    return this.request({ request: "message", ident });
  }

  /** A recipient (RCPT TO) from `ident`: its recipient rate. */
  recipientEvent(ident: string): Promise<AnvilReply> {
    return this.request({ request: "recipient", ident });
  }

  /** Closes the connection. */
  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
