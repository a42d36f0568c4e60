// What cleanup(8) knows about message headers: which carry sender or
// recipient addresses, which are Resent- or MIME headers, which it removes,
// and the formats of the headers it adds (Date:, Message-Id:, From:).

import { rfc822Date } from "../../lib/dsn/report.ts";

/** Header properties (Postfix's HDR_OPT_* flags). */
export interface HeaderInfo {
  /** Holds sender addresses (rewritten as header_sender). */
  sender?: boolean;
  /** Holds recipient addresses (rewritten as header_recipient). */
  recipient?: boolean;
  /** A Resent- header. */
  resent?: boolean;
  /** A MIME header (mime_header_checks applies). */
  mime?: boolean;
  /** cleanup removes it (after header checks saw it). */
  remove?: boolean;
}

const table: Record<string, HeaderInfo> = {
  "apparently-to": { recipient: true },
  "bcc": { recipient: true, remove: true },
  "cc": { recipient: true },
  "content-description": { mime: true },
  "content-disposition": { mime: true },
  "content-id": { mime: true },
  "content-length": { remove: true },
  "content-transfer-encoding": { mime: true },
  "content-type": { mime: true },
  "disposition-notification-to": { sender: true },
  "errors-to": { sender: true },
  "from": { sender: true },
  "mail-followup-to": { sender: true },
  "mail-reply-to": { sender: true },
  "mime-version": { mime: true },
  "reply-to": { sender: true },
  "resent-bcc": { recipient: true, resent: true, remove: true },
  "resent-cc": { recipient: true, resent: true },
  "resent-date": { resent: true },
  "resent-from": { sender: true, resent: true },
  "resent-message-id": { resent: true },
  "resent-reply-to": { recipient: true, resent: true },
  "resent-sender": { sender: true, resent: true },
  "resent-to": { recipient: true, resent: true },
  "return-path": { sender: true, remove: true },
  "return-receipt-to": { sender: true },
  "sender": { sender: true },
  "to": { recipient: true },
};

const none: HeaderInfo = {};

/** The properties of the header named `name` (any case). */
export function headerInfo(name: string): HeaderInfo {
  const lower = name.toLowerCase();
  return table[lower] ?? (lower.startsWith("content-") ? { mime: true } : none);
}

/** Splits `Name: value` (the value may span lines); null when the text is not a header. */
export function splitHeader(text: string): { name: string; value: string } | null {
  const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/.exec(text);
  if (!m) return null;
  return { name: m[1], value: text.slice(m[0].length) };
}

const p2 = (n: number) => String(n).padStart(2, "0");

/**
 * An RFC 5322 date as Postfix's mail_date() writes it, in local time:
 * `Tue,  4 Nov 2026 15:24:19 +0000 (UTC)` (the day of month space-padded).
 */
export const mailDate: (when: Date) => string = rfc822Date;

/** The Message-Id cleanup adds: `<YYYYMMDDhhmmss.QUEUEID@myhostname>` (UTC). */
export function makeMessageId(when: Date, queueId: string, myhostname: string): string {
  const stamp = `${when.getUTCFullYear()}${p2(when.getUTCMonth() + 1)}${p2(when.getUTCDate())}` +
    `${p2(when.getUTCHours())}${p2(when.getUTCMinutes())}${p2(when.getUTCSeconds())}`;
  return `<${stamp}.${queueId}@${myhostname}>`;
}
