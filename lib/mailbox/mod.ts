// Mailbox delivery shared by local(8), virtual(8) and postlock(1): mbox
// append with Postfix's From_ line, quoting and locking (mbox.ts, lock.ts),
// maildir delivery (maildir.ts), and the failure codes and texts Postfix's
// agents report (result.ts). Run deliveries as the recipient by passing an
// identity (lib/ffi/identity.ts).
//
// Typical use by an agent:
//
//   const content = readMessage(queueFile, request.dataOffset);
//   const r = await deliverToMbox({
//     path, sender, content, prepend: ["Delivered-To: u@example.com"],
//     styles: parseLockStyles(config.get("mailbox_delivery_lock")),
//     attempts: config.int("deliver_lock_attempts"),
//     delay: config.time("deliver_lock_delay"),
//     staleTime: config.time("stale_lock_time"),
//     sizeLimit: config.size("mailbox_size_limit"),
//     identity: { uid, gid }, defaultDsn: "5.2.0",
//   });
//   if (!r.ok) (r.dsn.startsWith("4") ? defer : bounce)(`cannot update mailbox ...${r.text}`);

export {
  acquireDotlock,
  dotlockPath,
  LOCK_STYLES,
  type LockOptions,
  type LockStyle,
  LockStyleError,
  type OpenMailbox,
  openMailbox,
  parseLockStyles,
  removeDotlock,
  safeOpen,
  tryDotlock,
} from "./lock.ts";
export {
  appendToMailbox,
  asctime,
  deliverToMbox,
  fromLine,
  type MboxDelivery,
  mboxMessage,
  quoteFromLine,
} from "./mbox.ts";
export {
  deliverToMaildir,
  type MaildirDelivery,
  maildirHostname,
  maildirNewName,
  maildirTmpName,
} from "./maildir.ts";
export { type MailboxFailure, type MailboxResult, mboxDsn } from "./result.ts";
export { errorText } from "./fd.ts";
