// Appending a message to a UNIX mbox file as Postfix's local(8) and
// virtual(8) do (mail_copy with MAIL_COPY_MBOX): a `From sender  date`
// line, the caller's prepended headers (Return-Path, X-Original-To,
// Delivered-To), the message with every line that starts with "From "
// quoted as ">From " (that rule only: ">From " lines are left alone), and an
// empty line at the end. The file is locked first (lock.ts); the append is
// fsynced before success, and on any failure the file is truncated back to
// its old size, so a failed delivery leaves the mailbox as it was.

import { messageBytes, type MessageContent } from "../deliver/message.ts";
import { quoteAddress } from "../address/quote.ts";
import { runAs } from "../ffi/identity.ts";
import { EFBIG, endOffset, errorText, osError, syncFd, truncateFd, writeAll } from "./fd.ts";
import { type LockOptions, type OpenMailbox, openMailbox } from "./lock.ts";
import { type MailboxResult, mboxDsn } from "./result.ts";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** asctime(3) of the local time `when`, without its newline: "Tue Nov  4 09:05:01 2026". */
export function asctime(when: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[when.getDay()]} ${MONTHS[when.getMonth()]} ${
    String(when.getDate()).padStart(2, " ")
  } ${two(when.getHours())}:${two(when.getMinutes())}:${
    two(when.getSeconds())
  } ${when.getFullYear()}`;
}

/** The mbox separator line for envelope sender `sender` ("" is MAILER-DAEMON), with its newline. */
export function fromLine(sender: string, when: Date): string {
  return `From ${sender === "" ? "MAILER-DAEMON" : quoteAddress(sender)}  ${asctime(when)}\n`;
}

const FROM_ = new TextEncoder().encode("From ");

/** A message line as mbox stores it: ">" before a line that starts with "From ". */
export function quoteFromLine(line: Uint8Array): Uint8Array {
  if (line.length < 5) return line;
  for (let i = 0; i < 5; i++) if (line[i] !== FROM_[i]) return line;
  const out = new Uint8Array(line.length + 1);
  out[0] = 0x3e; // ">"
  out.set(line, 1);
  return out;
}

/** The bytes one mbox delivery appends: From_ line, prepended headers, quoted message, empty line. */
export function mboxMessage(
  content: MessageContent,
  opts: { sender: string; prepend?: string[]; when?: Date },
): Uint8Array {
  const from = new TextEncoder().encode(fromLine(opts.sender, opts.when ?? new Date()));
  const body = messageBytes(content, { prepend: opts.prepend, transform: quoteFromLine });
  const out = new Uint8Array(from.length + body.length + 1);
  out.set(from);
  out.set(body, from.length);
  out[out.length - 1] = 0x0a;
  return out;
}

/**
 * Appends `data` to an open, locked mailbox: written through, fsynced, and
 * truncated back to the old size on any failure. A `sizeLimit` (bytes,
 * 0 = none) that the file would exceed fails as Postfix's file size limit
 * does: "error writing message: File too large" (5.2.2). Runs as the
 * identity the mailbox was opened as. Non-regular files (/dev/null) are
 * written without truncation or fsync.
 */
export function appendToMailbox(
  mailbox: OpenMailbox,
  data: Uint8Array,
  sizeLimit = 0,
): MailboxResult {
  return runAs(mailbox.identity, () => {
    const regular = mailbox.info.isFile;
    let origLength = 0;
    try {
      if (regular) origLength = endOffset(mailbox.fd);
      if (regular && sizeLimit > 0 && origLength + data.length > sizeLimit) {
        // What RLIMIT_FSIZE does to Postfix's write: the part up to the limit
        // is written, then EFBIG; the truncation below undoes the part.
        writeAll(mailbox.fd, data.subarray(0, Math.max(sizeLimit - origLength, 0)));
        throw Object.assign(new Error(errorText(EFBIG)), { errno: EFBIG });
      }
      writeAll(mailbox.fd, data);
      if (regular) syncFd(mailbox.fd);
      return { ok: true as const, path: mailbox.path };
    } catch (err) {
      const e = (err as { errno?: number }).errno === EFBIG
        ? { errno: EFBIG, text: errorText(EFBIG) }
        : osError(err);
      if (regular) {
        try {
          truncateFd(mailbox.fd, origLength);
        } catch {
          // Postfix ignores a failed undo too; the error below is what matters.
        }
      }
      return {
        ok: false as const,
        dsn: mboxDsn(e.errno, "5.3.0"),
        text: `error writing message: ${e.text}`,
        errno: e.errno,
      };
    }
  });
}

/** One delivery to an mbox file. */
export interface MboxDelivery extends LockOptions {
  /** The mailbox file. */
  path: string;
  /** Envelope sender ("" for the null sender). */
  sender: string;
  /** The message, as lib/deliver/message.ts reads it from the queue file. */
  content: MessageContent;
  /** Header lines to put first (Return-Path:, X-Original-To:, Delivered-To:), without line ends. */
  prepend?: string[];
  /** mailbox_size_limit / virtual_mailbox_limit in bytes (0: none). */
  sizeLimit?: number;
  /** The time in the From_ line (default now). */
  when?: Date;
  /** Fail with "mail system configuration error" (5.3.5) when the target is not a regular file. */
  requireRegular?: boolean;
  /** Fail with "destination PATH is not owned by recipient" (4.2.0) unless this uid owns the file. */
  requireOwner?: number;
}

/**
 * Delivers one message to an mbox file: lock (dotlock/flock/fcntl per
 * `styles`, with retries), append, fsync, unlock. The failure text is the
 * bare reason ("unable to create lock file /var/mail/u.lock: File exists",
 * "error writing message: File too large", "cannot open file: Permission
 * denied"); local(8) prefixes it with "cannot update mailbox PATH for user
 * USER. ", virtual(8) with "delivery failed to mailbox PATH: ".
 */
export async function deliverToMbox(d: MboxDelivery): Promise<MailboxResult> {
  const opened = await openMailbox(d.path, d);
  if (!opened.ok) return opened;
  const mailbox = opened.mailbox;
  try {
    if (d.requireRegular && !mailbox.info.isFile) {
      return { ok: false, dsn: "5.3.5", text: "mail system configuration error" };
    }
    if (d.requireOwner !== undefined && mailbox.info.uid !== d.requireOwner) {
      return { ok: false, dsn: "4.2.0", text: `destination ${d.path} is not owned by recipient` };
    }
    const data = mboxMessage(d.content, { sender: d.sender, prepend: d.prepend, when: d.when });
    return appendToMailbox(mailbox, data, d.sizeLimit ?? 0);
  } finally {
    mailbox.release();
  }
}
