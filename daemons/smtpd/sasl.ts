// SASL authentication through Dovecot's auth protocol (smtpd_sasl_type =
// dovecot, smtpd_sasl_path): a handshake naming the mechanisms the server
// offers, then AUTH/CONT/OK/FAIL lines with base64 payloads. One connection
// per SMTP session, opened when the client first says EHLO or AUTH.

import * as net from "node:net";

/** A step of an authentication: done (with the user), failed, or a challenge. */
export type SaslStep =
  | { kind: "ok"; user: string }
  | { kind: "fail"; reason: string }
  | { kind: "continue"; challenge: string };

/** A connection to Dovecot's auth service. */
export class DovecotAuth {
  private socket?: net.Socket;
  private buf = "";
  private lines: string[] = [];
  private wake?: () => void;
  private closed = false;
  private nextId = 1;
  /** The mechanisms the server offers (upper case). */
  mechanisms: string[] = [];

  constructor(readonly path: string) {}

  private async line(): Promise<string> {
    while (this.lines.length === 0) {
      if (this.closed) throw new Error(`${this.path}: connection closed`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 30000);
        this.wake = () => {
          clearTimeout(t);
          this.wake = undefined;
          resolve();
        };
      });
      if (this.lines.length === 0 && !this.closed) throw new Error(`${this.path}: timeout`);
    }
    return this.lines.shift()!;
  }

  /** Connects and reads the handshake (VERSION, MECH..., DONE). */
  async open(): Promise<void> {
    if (this.socket) return;
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ path: this.path });
      s.once("connect", () => {
        this.socket = s;
        resolve();
      });
      s.once("error", reject);
      s.on("data", (b: Uint8Array) => {
        this.buf += new TextDecoder().decode(b);
        let nl;
        while ((nl = this.buf.indexOf("\n")) >= 0) {
          this.lines.push(this.buf.slice(0, nl));
          this.buf = this.buf.slice(nl + 1);
        }
        this.wake?.();
      });
      s.on("close", () => {
        this.closed = true;
        this.wake?.();
      });
    });
    this.socket!.write(`VERSION\t1\t2\nCPID\t${Deno.pid}\n`);
    for (;;) {
      const fields = (await this.line()).split("\t");
      if (fields[0] === "VERSION" && fields[1] !== "1") {
        throw new Error(`unsupported protocol version ${fields[1]}`);
      }
      if (fields[0] === "MECH") this.mechanisms.push(fields[1].toUpperCase());
      if (fields[0] === "DONE") return;
    }
  }

  /** Starts an authentication; `response` is the client's initial response in base64 ("" for none). */
  async start(
    mechanism: string,
    response: string | undefined,
    info: { service: string; localIp: string; remoteIp: string; secured: boolean },
  ): Promise<{ id: number; step: SaslStep }> {
    const id = this.nextId++;
    let req = `AUTH\t${id}\t${mechanism}\tservice=${info.service}\tnologin`;
    if (info.localIp) req += `\tlip=${info.localIp}`;
    if (info.remoteIp) req += `\trip=${info.remoteIp}`;
    if (info.secured) req += "\tsecured";
    if (response !== undefined) req += `\tresp=${response}`;
    this.socket!.write(req + "\n");
    return { id, step: await this.reply(id) };
  }

  /** Sends the client's answer to a challenge. */
  async continue(id: number, response: string): Promise<SaslStep> {
    this.socket!.write(`CONT\t${id}\t${response}\n`);
    return await this.reply(id);
  }

  private async reply(id: number): Promise<SaslStep> {
    for (;;) {
      const fields = (await this.line()).split("\t");
      if (Number(fields[1]) !== id) continue;
      const params = new Map(
        fields.slice(2).map((f) => [f.split("=")[0], f.slice(f.indexOf("=") + 1)]),
      );
      if (fields[0] === "OK") return { kind: "ok", user: params.get("user") ?? "" };
      if (fields[0] === "CONT") return { kind: "continue", challenge: fields[2] ?? "" };
      if (fields[0] === "FAIL") return { kind: "fail", reason: params.get("reason") ?? "" };
    }
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
