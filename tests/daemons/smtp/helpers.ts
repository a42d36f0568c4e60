// Test scaffolding for the smtp/lmtp client: a scripted SMTP/LMTP server
// on a loopback port or unix socket (replies per command, a transcript of
// what the client said), and a runner that queues a message, serves the
// agent in-process and sends it one delivery request as qmgr would.

import * as net from "node:net";
import * as tls from "node:tls";
import { configFromText } from "../../../lib/config/mod.ts";
import { sendDeliverRequest } from "../../../lib/deliver/client.ts";
import type { DeliverReply } from "../../../lib/deliver/request.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import { deliverSmtp } from "../../../daemons/smtp/deliver.ts";
import { smtpEnvFromConfig } from "../../../daemons/smtp/mod.ts";
import {
  type BounceCall,
  makeQueue,
  type MessageSpec,
  recordingBounce,
  withLog,
  writeMessage,
} from "../qmgr/helpers.ts";
import { serveAgent } from "../../lib/deliver/agent_harness.ts";

/** What a scripted server answers; a function sees the command line. */
export type Answer = string | ((line: string, s: ServerSession) => string | undefined);

/** A scripted server's behaviour. */
export interface FakeServerOptions {
  /** The greeting (raw text with CRLF added), or null to say nothing. */
  greeting?: string | null;
  /** EHLO/LHLO extension keywords. */
  extensions?: string[];
  lmtp?: boolean;
  /** Replies by command verb (`MAIL`, `RCPT`, `DATA`, `.`, `EHLO`, ..., `*` for any other line), overriding the defaults. */
  replies?: Record<string, Answer>;
  /** LMTP: the reply per recipient after the message (by RCPT order; "" for none); default 250. */
  lmtpFinal?: (rcpt: string) => string;
  /** Raw bytes sent right after connecting instead of a greeting. */
  raw?: Uint8Array;
  /** Stay silent after the greeting (never answer commands). */
  mute?: boolean;
  /** Offer STARTTLS with this key and certificate (PEM text). */
  tls?: { key: string; cert: string; ca?: string };
  /** Offer STARTTLS, say 220, then answer the handshake with text (a broken TLS stack). */
  brokenTls?: boolean;
  /** With `tls`: TLS from the first byte (smtps, smtp_tls_wrappermode) instead of STARTTLS. */
  wrapper?: boolean;
  /** Listen address and port (default 127.0.0.1, any free port). */
  host?: string;
  port?: number;
}

/** One client connection as the server saw it. */
export interface ServerSession {
  lines: string[];
  /** Most commands that arrived in one read (above 1: the client pipelined). */
  maxBatch: number;
  /** The client's address. */
  peer?: string;
  /** The client's certificate subject CN, when it sent one over TLS. */
  clientCert?: string;
  tls?: boolean;
  messages: string[];
  rcpts: string[];
}

/** A running scripted server. */
export interface FakeServer {
  port: number;
  path?: string;
  sessions: ServerSession[];
  close(): Promise<void>;
}

/** Starts a scripted server on 127.0.0.1 (or a unix socket when `path` is given). */
export async function fakeServer(opts: FakeServerOptions = {}, path?: string): Promise<FakeServer> {
  const sessions: ServerSession[] = [];
  const sockets = new Set<net.Socket>();
  const onConnect = (sock: net.Socket) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    const sess: ServerSession = {
      lines: [],
      maxBatch: 0,
      messages: [],
      rcpts: [],
      peer: sock.remoteAddress,
    };
    sessions.push(sess);
    if (opts.wrapper) sess.tls = true;
    serveSession(sock, sess, opts);
  };
  const server = opts.wrapper && opts.tls
    ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onConnect)
    : net.createServer(onConnect);
  await new Promise<void>((resolve) => {
    if (path) server.listen(path, resolve);
    else server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve);
  });
  const port = path ? 0 : (server.address() as net.AddressInfo).port;
  return {
    port,
    path,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function serveSession(plain: net.Socket, sess: ServerSession, opts: FakeServerOptions): void {
  let sock: net.Socket = plain;
  const send = (text: string) => {
    if (!sock.destroyed) sock.write(text.endsWith("\n") ? text : text + "\r\n");
  };
  if (opts.raw) {
    sock.write(opts.raw);
    return;
  }
  if (opts.greeting !== null) send(opts.greeting ?? "220 fake.example ESMTP ready");
  let buf = "";
  let inData = false;
  let message: string[] = [];
  const hello = (verb: string) => {
    const ext = [...(opts.extensions ?? ["PIPELINING", "SIZE 10240000", "8BITMIME", "DSN"])];
    if ((opts.tls || opts.brokenTls) && !sess.tls) ext.push("STARTTLS");
    const lines = ["fake.example", ...ext];
    return lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}`).join("\r\n") +
      (verb ? "" : "");
  };
  const answer = (line: string): string | undefined => {
    const verb = line.split(/[\s:]/)[0].toUpperCase();
    const custom = opts.replies?.[verb] ?? opts.replies?.["*"];
    if (custom !== undefined) {
      const r = typeof custom === "function" ? custom(line, sess) : custom;
      if (r !== undefined) {
        if (verb === "RCPT" && r.startsWith("2")) sess.rcpts.push(line);
        if (verb === "DATA" && r.startsWith("354")) inData = true;
        return r;
      }
    }
    switch (verb) {
      case "EHLO":
      case "LHLO":
        return hello(verb);
      case "HELO":
        return "250 fake.example";
      case "MAIL":
        sess.rcpts = [];
        return "250 2.1.0 Ok";
      case "RCPT":
        sess.rcpts.push(line);
        return "250 2.1.5 Ok";
      case "DATA":
        if (!sess.rcpts.length) return "554 5.5.1 Error: no valid recipients";
        inData = true;
        return "354 End data with <CR><LF>.<CR><LF>";
      case "RSET":
        return "250 2.0.0 Ok";
      case "NOOP":
        return "250 2.0.0 Ok";
      case "QUIT":
        setTimeout(() => sock.end(), 1);
        return "221 2.0.0 Bye";
      default:
        return "502 5.5.2 Error: command not recognized";
    }
  };
  const onData = (chunk: Uint8Array) => {
    buf += new TextDecoder("latin1").decode(chunk);
    let batch = 0;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (inData) {
        if (line === ".") {
          inData = false;
          sess.messages.push(message.join("\r\n"));
          message = [];
          sess.lines.push(".");
          if (opts.mute) continue;
          if (opts.lmtp) {
            for (const r of sess.rcpts) {
              const addr = /<([^>]*)>/.exec(r)?.[1] ?? "";
              const final = opts.lmtpFinal?.(addr) ?? "250 2.0.0 Ok: delivered";
              if (final) send(final);
            }
          } else {
            const custom = opts.replies?.["."];
            const r = typeof custom === "function" ? custom(".", sess) : custom;
            send(r ?? `250 2.0.0 Ok: queued as Q${sess.messages.length}`);
          }
        } else message.push(line);
        continue;
      }
      sess.lines.push(line);
      sess.maxBatch = Math.max(sess.maxBatch, ++batch);
      if (opts.mute) continue;
      if (line.toUpperCase() === "STARTTLS" && opts.brokenTls) {
        send("220 2.0.0 Ready to start TLS");
        send("this is not a TLS server hello");
        setTimeout(() => sock.destroy(), 10);
        return;
      }
      if (line.toUpperCase() === "STARTTLS" && opts.tls && !sess.tls) {
        send("220 2.0.0 Ready to start TLS");
        sock.off("data", onData);
        buf = "";
        const secure = new tls.TLSSocket(sock, {
          isServer: true,
          key: opts.tls.key,
          cert: opts.tls.cert,
          requestCert: !!opts.tls.ca,
          rejectUnauthorized: false,
          ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
        });
        secure.on("error", () => {});
        secure.on("secure", () => {
          sess.tls = true;
          const peer = secure.getPeerCertificate();
          if (peer && peer.subject) sess.clientCert = String(peer.subject.CN);
        });
        sock = secure;
        sock.on("data", onData);
        return;
      }
      const r = answer(line);
      if (r !== undefined && r !== "") send(r);
      if (r === "") sock.destroy();
    }
  };
  sock.on("data", onData);
}

/** Test certificates made with openssl: a CA, a server certificate it signed, a client certificate. */
export interface TestCerts {
  dir: string;
  caFile: string;
  ca: string;
  serverKey: string;
  serverCert: string;
  /** A self-signed server certificate no CA vouches for. */
  selfKey: string;
  selfCert: string;
  clientCertFile: string;
  clientKeyFile: string;
}

function openssl(dir: string, args: string[]): void {
  const out = new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .outputSync();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Makes a CA and certificates for `serverName` (and 127.0.0.1) in a fresh folder. */
export function makeCerts(serverName: string): TestCerts {
  const dir = Deno.makeTempDirSync({ prefix: "smtp-tls-" });
  const subj = (cn: string) => ["-subj", `/CN=${cn}`];
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    ...subj("Test CA"),
  ]);
  Deno.writeTextFileSync(`${dir}/san.ext`, `subjectAltName=DNS:${serverName},IP:127.0.0.1\n`);
  openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    ...subj(serverName),
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  ]);
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "self.key",
    "-out",
    "self.pem",
    "-days",
    "2",
    ...subj(serverName),
  ]);
  openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "client.key",
    "-out",
    "client.csr",
    ...subj("client.example"),
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    "client.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "client.pem",
    "-days",
    "2",
  ]);
  const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    ca: read("ca.pem"),
    serverKey: read("server.key"),
    serverCert: read("server.pem"),
    selfKey: read("self.key"),
    selfCert: read("self.pem"),
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client.key`,
  };
}

/** What one delivery run gives back. */
export interface RunResult {
  reply: DeliverReply;
  log: string;
  bounce: BounceCall[];
  id: string;
  /** Recipients left in the queue file (not marked done). */
  left: number;
}

/** Request fields a test may set. */
export interface RequestSpec extends Partial<MessageSpec> {
  nexthop: string;
  /** DEL_REQ_FLAG_* bits (address probes). */
  flags?: number;
  encoding?: string;
  smtputf8?: number;
  envid?: string;
  ret?: number;
  dsnOrcpt?: string;
  /** Request attributes (client_name, client_address, ...). */
  attrs?: Record<string, string>;
}

/** Queues a message, runs the smtp (or lmtp) agent on one request, returns what happened. */
export async function deliver(
  spec: RequestSpec,
  mainCf = "",
  program: "smtp" | "lmtp" = "smtp",
): Promise<RunResult> {
  const q = await makeQueue();
  Deno.writeTextFileSync(`${q.dir}/main.cf`, mainCf);
  const config = configFromText(
    q.dir,
    [
      `queue_directory = ${q.layout.queueDirectory}`,
      "myhostname = client.example",
      "inet_interfaces = 127.0.0.9",
      "smtp_connect_timeout = 3s",
      "lmtp_connect_timeout = 3s",
      mainCf,
    ].join("\n"),
  );
  const bounce = recordingBounce();
  const id = writeMessage(q, {
    recipients: spec.recipients ?? ["rcpt@remote.example"],
    sender: spec.sender,
    body: spec.body,
    notify: spec.notify,
  }, "active");
  const env = smtpEnvFromConfig(config, program);
  env.layout = q.layout;
  const agent = await serveAgent(
    q.dir,
    { layout: q.layout, bounce, resolution: 2 },
    (s) => deliverSmtp(s, env),
  );
  const path = queueFilePath(q.layout, "active", id);
  const msg = parseQueuedMessage(id, Deno.readFileSync(path));
  try {
    const result = await withLog(async (lines) => {
      const reply = await sendDeliverRequest(agent.path, {
        flags: spec.flags ?? 0,
        queueName: "active",
        queueId: id,
        dataOffset: msg.dataOffset,
        dataSize: msg.size,
        nexthop: spec.nexthop,
        encoding: spec.encoding ?? "",
        smtputf8: spec.smtputf8 ?? 0,
        sender: msg.sender,
        envid: spec.envid ?? "",
        ret: spec.ret ?? 0,
        arrival: msg.arrival,
        active: msg.arrival,
        attrs: spec.attrs ?? {},
        recipients: msg.recipients.map((r) => ({ ...r, dsnOrcpt: spec.dsnOrcpt ?? r.dsnOrcpt })),
      });
      return { reply, log: lines.join("\n") };
    });
    const left = parseQueuedMessage(id, Deno.readFileSync(path)).recipients.length;
    return { ...result, bounce: bounce.calls, id, left };
  } finally {
    await agent.close();
    await Deno.remove(q.dir, { recursive: true });
  }
}

/** Test options: the agent keeps sockets and timers the sanitizers would flag. */
export const opts = { sanitizeOps: false, sanitizeResources: false };
