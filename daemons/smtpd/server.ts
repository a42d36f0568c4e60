// Running a session: over an accepted node:net socket (one read loop per
// connection, TCP no-delay, no web streams), or over standard input and
// output for `sendmail -bs`. Both log connect/disconnect lines as Postfix.
// The client's hostname comes from Posthorn's resolver (hosts(5), then DNS),
// forward-confirmed as Postfix's smtpd does.

import type * as net from "node:net";
import * as tls from "node:tls";
import { info, warn } from "../../lib/log.ts";
import { lookupPeer, type PeerNames } from "../../lib/dns/peer.ts";
import { recordPeerNames } from "./checks.ts";
import { ReadTimeout } from "../../lib/smtp/line_reader.ts";
import {
  accessDenied,
  commandLoop,
  greetingViolation,
  LostConnection,
  LostInData,
} from "./commands.ts";
import { type ClientInfo, Session, type SmtpdEnv, type Transport } from "./session.ts";

/** node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d. */
function plainAddress(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

/** The client's verified and unverified names ("unknown" when not found or not looked up). */
async function peerNames(addr: string, env: SmtpdEnv): Promise<PeerNames> {
  if (!env.checker.config.bool("smtpd_peername_lookup")) {
    return { name: "unknown", reverseName: "unknown", nameStatus: "perm", reverseStatus: "perm" };
  }
  try {
    return await lookupPeer(env.checker.dns, addr, { warn });
  } catch (err) {
    warn(`client hostname lookup for ${addr}: ${(err as Error).message}`);
    return { name: "unknown", reverseName: "unknown", nameStatus: "temp", reverseStatus: "temp" };
  }
}

/** Serves one SMTP session on an accepted socket (TLS from the start in wrapper mode). */
export async function serveConnection(conn: net.Socket, env: SmtpdEnv): Promise<void> {
  conn.setNoDelay(true);
  // deno-lint-ignore prefer-const -- assigned once the client's name is known
  let session: Session | undefined;
  const early: Uint8Array[] = [];
  let ended = false;
  let socket: net.Socket = conn;
  const onData = (b: Uint8Array) => session ? session.reader.push(b) : early.push(b);
  const onEnd = () => session ? session.reader.end() : (ended = true);
  const attach = (sock: net.Socket) => {
    sock.on("data", onData);
    sock.on("end", onEnd);
    sock.on("close", onEnd);
    sock.on("error", onEnd);
  };
  const detach = (sock: net.Socket) => {
    sock.off("data", onData);
    sock.off("end", onEnd);
    sock.off("close", onEnd);
    sock.off("error", onEnd);
  };
  // Wrapper mode: the handshake comes first, before any byte is read as SMTP.
  const wrapped = env.settings.tlsWrapperMode && env.tls !== undefined;
  if (wrapped) {
    try {
      socket = await handshake(conn, env.tls!);
    } catch (err) {
      info(`SSL_accept error from ${plainAddress(conn.remoteAddress)}: ${(err as Error).message}`);
      conn.destroy();
      return;
    }
  }
  attach(socket);
  const addr = plainAddress(conn.remoteAddress);
  const names = await peerNames(addr, env);
  const client: ClientInfo = {
    name: names.name,
    reverseName: names.reverseName,
    addr,
    port: String(conn.remotePort ?? ""),
    serverAddr: plainAddress(conn.localAddress),
    serverPort: String(conn.localPort ?? ""),
  };
  const transport: Transport = {
    write: (d) => {
      if (!socket.destroyed) socket.write(d);
    },
    close: () => socket.end(),
  };
  session = new Session(env, transport, client, {
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  });
  recordPeerNames(session, names);
  const s = session;
  s.upgradeTls = async () => {
    s.flush();
    // RFC 3207 4.2: nothing the client sent before the handshake counts.
    s.reader.discard();
    detach(conn);
    socket = await handshake(conn, env.tls!);
    attach(socket);
    tlsEstablished(s, socket as tls.TLSSocket);
    s.helo = "";
    s.esmtp = false;
    s.pipeliningOffered = false;
    s.resetTransaction();
  };
  for (const b of early) session.reader.push(b);
  if (ended) session.reader.end();
  if (wrapped) tlsEstablished(s, socket as tls.TLSSocket);
  await runSession(session);
}

/** The TLS handshake on an accepted socket. */
function handshake(conn: net.Socket, tlsFiles: { cert: string; key: string }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(conn, {
      isServer: true,
      cert: tlsFiles.cert,
      key: tlsFiles.key,
    });
    secure.once("secure", () => resolve(secure));
    secure.once("error", reject);
  });
}

/** Marks the session encrypted and logs it as Postfix does. */
function tlsEstablished(s: Session, secure: tls.TLSSocket): void {
  const cipher = secure.getCipher();
  info(
    `Anonymous TLS connection established from ${s.client}: ${secure.getProtocol()} with cipher ` +
      `${cipher.standardName ?? cipher.name} (${
        cipher.version === "TLSv1.3" ? 256 : 128
      }/256 bits)`,
  );
  s.tlsActive = true;
}

/** Runs a whole session: limits, greeting, commands, and the closing log lines. */
export async function runSession(s: Session): Promise<void> {
  const env = s.env;
  const st = env.settings;
  info(`connect from ${s.client}`);
  try {
    if (await env.limits.connect(s)) {
      const denied = st.smtpdDelayReject ? undefined : await env.checker.client(s, "CONNECT");
      await env.checker.hostAuthorized(s, "smtpd_authorized_xforward_hosts").then((ok) =>
        s.xforwardAllowed = ok
      );
      if (!greetingViolation(s)) {
        if (denied) {
          // As Postfix: the rejection takes the greeting's place, and the
          // commands that follow are refused.
          s.reply(denied);
          s.clientReject = accessDenied(s);
        } else {
          s.replyLine(`220 ${st.smtpdBanner}`);
        }
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
