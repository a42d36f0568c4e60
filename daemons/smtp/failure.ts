// How a session step fails, in Postfix's words: the text after status=,
// the enhanced code, whether it is permanent, and what the DSN report says
// (Diagnostic-Code from the server's reply, Remote-MTA when one talked).

import type { ServerReply } from "./stream.ts";
import type { ServerAddress } from "./nexthop.ts";

/** A failure for one recipient, a message, or a whole server. */
export interface Failure {
  dsn: string;
  text: string;
  /** Permanent (bounce) rather than temporary (defer / next server). */
  hard: boolean;
  /** relay= for the log line. */
  relay: string;
  diagType?: string;
  diagText?: string;
  mtaType?: string;
  mtaName?: string;
  /** Uses of the cached connection it happened on (conn_use= in the log). */
  connUse?: number;
}

/** `host[addr]` as error text names a server. */
export function serverName(a: ServerAddress): string {
  return `${a.host}[${a.addr}]`;
}

/** relay= for a server: `host[addr]:port`, or `host[path]` for a unix-domain socket. */
export function relayName(a: ServerAddress): string {
  return a.unix ? `${a.host}[${a.addr}]` : `${a.host}[${a.addr}]:${a.port}`;
}

/** The enhanced code of a reply, `C.0.0` when the server gave none (C from the reply class). */
export function replyDsn(r: ServerReply): string {
  if (r.dsn) return r.dsn;
  const cls = Math.floor(r.code / 100);
  return `${cls === 2 || cls === 5 ? cls : 4}.${r.code ? "0" : "5"}.0`;
}

/** A failure the server said: `host h[a] said: REPLY (in reply to COMMAND)`. */
export function saidFailure(a: ServerAddress, r: ServerReply, command: string): Failure {
  const dsn = replyDsn(r);
  return {
    dsn,
    text: `host ${serverName(a)} said: ${r.text} (in reply to ${command})`,
    hard: dsn.startsWith("5."),
    relay: relayName(a),
    diagType: "smtp",
    diagText: r.text,
    mtaType: "dns",
    mtaName: a.host,
  };
}

/** A failure of ours or of the connection, with a server involved. */
export function localFailure(a: ServerAddress, dsn: string, text: string, talked = true): Failure {
  return {
    dsn,
    text,
    hard: dsn.startsWith("5."),
    relay: talked ? relayName(a) : "none",
    diagType: "X-Postfix",
    diagText: text,
    ...(talked ? { mtaType: "dns", mtaName: a.host } : {}),
  };
}

/** The server stopped answering (time out) or went away (lost connection) during `stage`. */
export function conversationFailure(a: ServerAddress, timedOut: boolean, stage: string): Failure {
  const text = timedOut
    ? `conversation with ${serverName(a)} timed out while ${stage}`
    : `lost connection with ${serverName(a)} while ${stage}`;
  return localFailure(a, "4.4.2", text);
}

/** The reply class digit changed to 4 (smtp_skip_5xx_greeting, soft_bounce). */
export function softenedFailure(f: Failure): Failure {
  if (!f.hard) return f;
  return { ...f, hard: false, dsn: "4" + f.dsn.slice(1) };
}
