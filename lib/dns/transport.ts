// One DNS exchange with one server: UDP from a fresh socket (so each query gets
// its own kernel-chosen source port), or TCP with the two-byte length prefix of
// RFC 1035 4.2.2. Replies are accepted only from the server asked, with the
// query's id and question; anything else is ignored while the timer runs.

import dgram from "node:dgram";
import { canonicalName, decodeMessage, type Message } from "./message.ts";
import type { ServerAddress } from "./resolv_conf.ts";

/** The outcome of one exchange. */
export type Exchange =
  | { kind: "answer"; message: Message }
  | { kind: "timeout" }
  | { kind: "error"; reason: string };

/** True when a reply answers the query (RFC 5452: id, question, direction). */
export function answersQuery(query: Message, reply: Message): boolean {
  if (!reply.flags.qr || reply.id !== query.id) return false;
  if (reply.questions.length !== query.questions.length) return false;
  return query.questions.every((q, i) => {
    const r = reply.questions[i];
    return canonicalName(r.name) === canonicalName(q.name) && r.type === q.type &&
      r.class === q.class;
  });
}

/** Normalises an address for comparing reply sources (IPv4-mapped IPv6 too). */
function sameHost(a: string, b: string): boolean {
  const strip = (s: string) => s.toLowerCase().replace(/^::ffff:/, "");
  return strip(a) === strip(b);
}

/** Sends the query over UDP and waits for a matching reply. */
export function udpExchange(
  server: ServerAddress,
  query: Message,
  wire: Uint8Array,
  timeoutMs: number,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(server.host.includes(":") ? "udp6" : "udp4");
    let done = false;
    const finish = (result: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    socket.on("error", (err: Error) => finish({ kind: "error", reason: err.message }));
    socket.on("message", (data: Uint8Array, rinfo: { address: string; port: number }) => {
      if (!sameHost(rinfo.address, server.host) || rinfo.port !== server.port) return;
      let reply: Message;
      try {
        reply = decodeMessage(new Uint8Array(data));
      } catch (err) {
        // Garbage carrying our id is this server's (broken) answer: give up on
        // it now; garbage without our id may be spoofed and is ignored.
        if (data.length >= 2 && ((data[0] << 8) | data[1]) === query.id) {
          finish({ kind: "error", reason: `malformed reply: ${(err as Error).message}` });
        }
        return;
      }
      if (answersQuery(query, reply)) finish({ kind: "answer", message: reply });
    });
    socket.bind(0, () => {
      socket.send(wire, server.port, server.host, (err: Error | null) => {
        if (err) finish({ kind: "error", reason: err.message });
      });
    });
  });
}

/** Sends the query over TCP (after a truncated UDP reply). */
export async function tcpExchange(
  server: ServerAddress,
  query: Message,
  wire: Uint8Array,
  timeoutMs: number,
): Promise<Exchange> {
  let conn: Deno.TcpConn | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    conn = await Deno.connect({ hostname: server.host, port: server.port });
    if (timedOut) {
      conn.close();
      return { kind: "timeout" };
    }
    const framed = new Uint8Array(wire.length + 2);
    framed[0] = wire.length >> 8;
    framed[1] = wire.length & 0xff;
    framed.set(wire, 2);
    await writeAll(conn, framed);
    const head = await readExactly(conn, 2);
    const body = await readExactly(conn, (head[0] << 8) | head[1]);
    let reply: Message;
    try {
      reply = decodeMessage(body);
    } catch (err) {
      return { kind: "error", reason: `malformed reply: ${(err as Error).message}` };
    }
    if (!answersQuery(query, reply)) return { kind: "error", reason: "mismatched TCP reply" };
    return { kind: "answer", message: reply };
  } catch (err) {
    if (timedOut) return { kind: "timeout" };
    return { kind: "error", reason: (err as Error).message };
  } finally {
    clearTimeout(timer);
    if (!timedOut) {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
    }
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error("connection closed by server");
    off += got;
  }
  return out;
}
