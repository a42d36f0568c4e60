// An SMTP load generator: N concurrent clients, each sending messages over
// one connection (EHLO once, then MAIL/RCPT/DATA with PIPELINING, RSET-free),
// until a message count or a time limit is reached. Usable on its own:
// `deno run -A scripts/smtp_load.ts PORT [CLIENTS] [MESSAGES] [SECONDS]`.

/** What a load run did. */
export interface LoadResult {
  accepted: number;
  rejected: number;
  seconds: number;
}

/** Load settings. */
export interface LoadOptions {
  port: number;
  host?: string;
  clients: number;
  /** Total messages to send (all clients together). */
  messages: number;
  /** Stop after this many seconds even when messages remain. */
  seconds: number;
  recipient?: string;
  /** Message body size in bytes. */
  bodyBytes?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

class Conn {
  private buf = "";
  constructor(readonly conn: Deno.TcpConn) {}
  async reply(): Promise<string> {
    for (;;) {
      let nl;
      while ((nl = this.buf.indexOf("\r\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        if (line.length < 4 || line[3] !== "-") return line;
      }
      const chunk = new Uint8Array(16384);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("connection closed");
      this.buf += dec.decode(chunk.subarray(0, n));
    }
  }
  async send(text: string): Promise<void> {
    const b = enc.encode(text);
    for (let at = 0; at < b.length;) at += await this.conn.write(b.subarray(at));
  }
}

/** Runs the load and returns the counts. */
export async function smtpLoad(o: LoadOptions): Promise<LoadResult> {
  let left = o.messages;
  let accepted = 0;
  let rejected = 0;
  const rcpt = o.recipient ?? "u@localhost";
  const body = "Subject: load\r\n\r\n" +
    "x".repeat(70).concat("\r\n").repeat(Math.ceil((o.bodyBytes ?? 1000) / 72));
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  const client = async () => {
    const c = new Conn(await Deno.connect({ hostname: o.host ?? "127.0.0.1", port: o.port }));
    c.conn.setNoDelay(true);
    await c.reply();
    await c.send("EHLO load.example\r\n");
    await c.reply();
    while (left > 0 && performance.now() < deadline) {
      left--;
      await c.send(`MAIL FROM:<load@example.org>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
      const replies = [await c.reply(), await c.reply(), await c.reply()];
      if (!replies[2].startsWith("354")) {
        rejected++;
        await c.send("RSET\r\n");
        await c.reply();
        continue;
      }
      await c.send(body + ".\r\n");
      if ((await c.reply()).startsWith("250")) accepted++;
      else rejected++;
    }
    await c.send("QUIT\r\n");
    await c.reply().catch(() => "");
    c.conn.close();
  };
  // A client the server drops (limits, errors) simply stops; the counts say what it did.
  await Promise.all(Array.from({ length: o.clients }, () => client().catch(() => {})));
  return { accepted, rejected, seconds: (performance.now() - start) / 1000 };
}

if (import.meta.main) {
  const [port, clients = "10", messages = "1000", seconds = "30"] = Deno.args;
  const r = await smtpLoad({
    port: Number(port),
    clients: Number(clients),
    messages: Number(messages),
    seconds: Number(seconds),
  });
  console.log(
    `${r.accepted} accepted, ${r.rejected} rejected in ${r.seconds.toFixed(2)} s: ${
      (r.accepted / r.seconds).toFixed(0)
    } msg/s`,
  );
}
