// What a mailbox or maildir delivery reports: success, or a failure with an
// RFC 3463 code and Postfix's reason text, so that the delivery agent can
// bounce (5.x.x) or defer (4.x.x) with the words Postfix's agents use.

import { EAGAIN, EDQUOT, EFBIG, ENOSPC, ESTALE } from "./fd.ts";

/** Why a delivery failed: DSN code, reason text (without the agent's prefix), errno when known. */
export interface MailboxFailure {
  /** X.Y.Z: 4.x.x means try again later, 5.x.x means bounce. */
  dsn: string;
  /** Postfix's reason, e.g. "error writing message: File too large". */
  text: string;
  errno?: number;
}

/** The outcome of one delivery to a mailbox file or maildir. */
export type MailboxResult =
  | { ok: true; /** The file written (maildir: the file in new/). */ path: string }
  | ({ ok: false } & MailboxFailure);

/**
 * The DSN code for a mailbox error, as Postfix's mbox_dsn(): a lock held by
 * another (EAGAIN, ESTALE) 4.2.0, a full file system (ENOSPC) 4.3.0, a full
 * mailbox (EDQUOT, EFBIG) 5.2.2, else `defaultDsn`.
 */
export function mboxDsn(errno: number | undefined, defaultDsn: string): string {
  if (errno === EAGAIN || errno === ESTALE) return "4.2.0";
  if (errno === ENOSPC) return "4.3.0";
  if (errno === EDQUOT || errno === EFBIG) return "5.2.2";
  return defaultDsn;
}
