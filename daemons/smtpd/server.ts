// Running a session: over an accepted node:net socket (one read loop per
// connection, TCP no-delay, no web streams), or over standard input and
// output for `sendmail -bs`. Both log connect/disconnect lines as Postfix.

import * as net from "node:net";
import { lookupService } from "node:dns/promises";
import { info } from "../../lib/log.ts";
import { ReadTimeout } from "../../lib/smtp/line_reader.ts";
import { commandLoop, greetingViolation, LostConnection, LostInData } from "./commands.ts";
import { type ClientInfo, Session, type SmtpdEnv, type Transport } from "./session.ts";

/** node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d. */
function plainAddress(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

/** The client's name by reverse lookup (getnameinfo: /etc/hosts, then DNS), or "unknown". */
async function peerName(addr: string): Promise<string> {
  if (addr === "unknown") return "unknown";
  const timeout = new Promise<string>((r) => setTimeout(() => r("unknown"), 5000));
  const lookup = lookupService(addr, 0).then((x) => x.hostname === addr ? "unknown" : x.hostname)
    .catch(() => "unknown");
  return await Promise.race([lookup, timeout]);
}

/** Serves one SMTP session on an accepted socket. */
export async function serveConnection(conn: net.Socket, env: SmtpdEnv): Promise<void> {
  conn.setNoDelay(true);
  // deno-lint-ignore prefer-const -- assigned once the client's name is known
  let session: Session | undefined;
  const early: Uint8Array[] = [];
  let ended = false;
  conn.on("data", (b: Uint8Array) => session ? session.reader.push(b) : early.push(b));
  const end = () => session ? session.reader.end() : (ended = true);
  conn.on("end", end);
  conn.on("close", end);
  conn.on("error", end);
  const addr = plainAddress(conn.remoteAddress);
  const name = await peerName(addr);
  const client: ClientInfo = {
    name,
    reverseName: name,
    addr,
    port: String(conn.remotePort ?? ""),
    serverAddr: plainAddress(conn.localAddress),
    serverPort: String(conn.localPort ?? ""),
  };
  const transport: Transport = {
    write: (d) => {
      if (!conn.destroyed) conn.write(d);
    },
    close: () => conn.end(),
  };
  session = new Session(env, transport, client, {
    pause: () => conn.pause(),
    resume: () => conn.resume(),
  });
  for (const b of early) session.reader.push(b);
  if (ended) session.reader.end();
  await runSession(session);
}

/** Runs a whole session: limits, greeting, commands, and the closing log lines. */
export async function runSession(s: Session): Promise<void> {
  const env = s.env;
  const st = env.settings;
  info(`connect from ${s.client}`);
  try {
    if (await env.limits.connect(s)) {
      if (!st.smtpdDelayReject) s.clientReject = await env.checker.client(s, "CONNECT");
      if (!greetingViolation(s)) {
        s.replyLine(`220 ${st.smtpdBanner}`);
        await commandLoop(s);
      }
    }
  } catch (err) {
    if (err instanceof ReadTimeout) {
      s.reply({ code: 421, dsn: "4.4.2", text: `${st.myhostname} Error: timeout exceeded` });
      info(`timeout after ${s.where} from ${s.client}`);
    } else if (err instanceof LostInData) {
      info(`lost connection after ${s.where} (${err.bytes} bytes) from ${s.client}`);
    } else if (err instanceof LostConnection) {
      info(`lost connection after ${s.where} from ${s.client}`);
    } else throw err;
  } finally {
    // An unfinished message is dropped: cleanup removes a file it was not told to commit.
    s.resetTransaction();
    s.end();
    await env.limits.disconnect(s);
    info(`disconnect from ${s.client} ${s.disconnectCounts()}`);
  }
}

/**
 * A session on standard input and output (`sendmail -bs`): the client is
 * the local host. Resolves when the session ends.
 */
export async function serveStdio(env: SmtpdEnv): Promise<void> {
  const transport: Transport = {
    write: (d) => {
      const bytes = typeof d === "string" ? new TextEncoder().encode(d) : d;
      for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
    },
    close: () => {},
  };
  const s = new Session(env, transport, {
    name: "localhost",
    reverseName: "localhost",
    addr: "127.0.0.1",
    port: "",
    serverAddr: "127.0.0.1",
    serverPort: "",
  });
  const pump = (async () => {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      s.reader.push(buf.slice(0, n));
    }
    s.reader.end();
  })();
  await runSession(s);
  s.reader.end();
  void pump;
}
