// SMTP replies: a three-digit code, an RFC 3463 enhanced status code and
// text, formatted as RFC 5321 4.2.1 multi-line replies; and the soft_bounce
// rule that turns a permanent reply into a temporary one. Shared by the SMTP
// server and, later, the SMTP client.

/** One SMTP reply. */
export interface SmtpReply {
  /** The three-digit code (250, 550, ...). */
  code: number;
  /** The enhanced status code ("2.1.0"), or "" when the reply carries none. */
  dsn: string;
  /** The text; several lines make a multi-line reply. */
  text: string | string[];
}

/** A reply from its parts. */
export function reply(code: number, dsn: string, text: string | string[]): SmtpReply {
  return { code, dsn, text };
}

/** The reply as wire text: `CODE-DSN line` for all lines but the last, each ended by CRLF. */
export function formatReply(r: SmtpReply): string {
  const lines = Array.isArray(r.text) ? r.text : [r.text];
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? " " : "-";
    const body = r.dsn ? `${r.dsn} ${lines[i]}` : lines[i];
    out += `${r.code}${sep}${body}\r\n`;
  }
  return out;
}

/** The reply on one line, as log lines quote it: `554 5.7.1 text`. */
export function replyText(r: SmtpReply): string {
  const lines = Array.isArray(r.text) ? r.text : [r.text];
  return r.dsn ? `${r.code} ${r.dsn} ${lines.join(" ")}` : `${r.code} ${lines.join(" ")}`;
}

/**
 * Splits access-table or policy text "NNN [X.Y.Z] text" into a reply; the
 * enhanced code defaults to `defaultDsn` with its class digit taken from the
 * reply code (Postfix's rule: a 4xx reply never carries a 5.x.x code).
 */
export function parseReplyText(text: string, defaultDsn: string): SmtpReply | undefined {
  const m = /^([245]\d\d)(?:\s+|$)(?:([245]\.\d{1,3}\.\d{1,3})(?:\s+|$))?(.*)$/s.exec(text);
  if (!m) return undefined;
  const code = Number(m[1]);
  let dsn = m[2] ?? defaultDsn;
  if (dsn[0] !== m[1][0]) dsn = m[1][0] + dsn.slice(1);
  return { code, dsn, text: m[3] };
}

/** soft_bounce: a 5xx reply becomes 4xx, and its enhanced code 4.x.x. */
export function softened(r: SmtpReply): SmtpReply {
  if (r.code < 500 || r.code >= 600) return r;
  return { code: r.code - 100, dsn: r.dsn ? "4" + r.dsn.slice(1) : r.dsn, text: r.text };
}

/** The enhanced code's class follows the reply's first digit ("5.7.1" for a 4xx becomes "4.7.1"). */
export function matchDsnClass(code: number, dsn: string): string {
  const first = String(code)[0];
  return dsn && dsn[0] !== first ? first + dsn.slice(1) : dsn;
}

/** Parsed server reply lines (for clients): the code and the text lines. */
export interface ParsedReply {
  code: number;
  lines: string[];
}

/** Whether a reply line is the last of its reply (`250 ` rather than `250-`). */
export function isLastReplyLine(line: string): boolean {
  return line.length < 4 || line[3] !== "-";
}
