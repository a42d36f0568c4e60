// The final deliveries of local(8): the user's mailbox (mbox or maildir,
// in mail_spool_directory or at home_mailbox), mailbox_command(_maps),
// mailbox_transport(_maps) and fallback_transport(_maps) (the request is
// passed to that transport's agent, as Postfix's deliver_pass() does),
// /file and |command destinations of aliases and .forward files. Each one
// adds the headers Postfix's local(8) prepends: Return-Path:,
// X-Original-To: and (per prepend_delivered_header) Delivered-To:.

import { quoteAddress } from "../../lib/address/quote.ts";
import { runCommand } from "../../lib/deliver/command.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import { messageBytes } from "../../lib/deliver/message.ts";
import {
  deliverToMaildir,
  deliverToMbox,
  fromLine,
  parseLockStyles,
} from "../../lib/mailbox/mod.ts";
import type { MailboxResult } from "../../lib/mailbox/mod.ts";
import { warn } from "../../lib/log.ts";
import { localExpand } from "./expand.ts";
import { mailboxSize, notifyBiff } from "./biff.ts";
import {
  type AddressParts,
  addressParts,
  allowed,
  expandAttrs,
  fail,
  record,
} from "./recipient.ts";
import type { ExpandType, Level, RecipientRun, UserAttr } from "./state.ts";

/** The headers local(8) puts before the message, in Postfix's order. */
export function prependHeaders(
  run: RecipientRun,
  lv: Level,
  opts: { returnPath: boolean; delivered: boolean },
): string[] {
  const s = run.env.settings;
  const out: string[] = [];
  if (opts.returnPath) out.push(`Return-Path: <${quoteAddress(lv.sender)}>`);
  const orig = run.top.origRcpt || (s.enableOriginalRecipient ? run.top.address : "");
  if (orig && s.enableOriginalRecipient) out.push(`X-Original-To: ${quoteAddress(orig)}`);
  if (opts.delivered) out.push(`Delivered-To: ${quoteAddress(lv.delivered).toLowerCase()}`);
  return out;
}

/** Rights for a file or command: root's uid and gid become default_privs' (home and shell stay). */
function commandRights(run: RecipientRun, user: UserAttr | undefined): UserAttr {
  const dp = run.env.defaultPrivs;
  if (!user) return { uid: dp.uid, gid: dp.gid };
  if (user.uid === 0) return { ...user, uid: dp.uid, gid: dp.gid };
  return user;
}

/** Identity for lib/ffi/identity.ts sections; none when this process cannot switch. */
function identityOf(run: RecipientRun, user: UserAttr) {
  return run.env.privileged ? { uid: user.uid, gid: user.gid } : undefined;
}

/**
 * The transport for `key` from mailbox_transport_maps or
 * fallback_transport_maps: "" when no table has it, null when a lookup
 * failed (the recipient is then deferred).
 */
export async function transportFromMaps(
  run: RecipientRun,
  lv: Level,
  maps: string[],
  key: string,
): Promise<string | null> {
  for (const spec of maps) {
    try {
      const value = await run.env.openTable(spec).lookup(key);
      if (value !== undefined) return value.trim();
    } catch (err) {
      warn(`${spec} lookup error for "${key}": ${(err as Error).message}`);
      fail(run, lv, "4.3.0", "mail system configuration error");
      return null;
    }
  }
  return "";
}

/** Hands the recipient to another delivery agent (Postfix's deliver_pass()). */
export async function passToTransport(
  run: RecipientRun,
  lv: Level,
  spec: string,
): Promise<void> {
  const req = run.session.request;
  const colon = spec.indexOf(":");
  const transport = colon < 0 ? spec : spec.slice(0, colon);
  const nexthop = colon < 0 || colon === spec.length - 1 ? req.nexthop : spec.slice(colon + 1);
  const top = run.top;
  const rcpt = lv.address === top.address
    ? top
    : { ...top, address: lv.address, origRcpt: top.origRcpt || top.address };
  try {
    const reply = await sendDeliverRequest(`${run.env.privateDir}/${transport}`, {
      ...req,
      nexthop,
      recipients: [rcpt],
    });
    run.leaves.push({ kind: "passed", outcome: reply.results.get(top.offset) ?? "deferred" });
  } catch (err) {
    warn(`connect to transport private/${transport}: ${(err as Error).message}`);
    fail(run, lv, "4.3.0", "mail transport unavailable");
  }
}

/**
 * Delivers to the user's mailbox: mailbox_transport(_maps),
 * mailbox_command(_maps), home_mailbox or mail_spool_directory. False when
 * the user is unknown (Postfix's deliver_mailbox()).
 */
export async function deliverMailbox(
  run: RecipientRun,
  lv: Level,
  parts: AddressParts,
): Promise<boolean> {
  const env = run.env;
  const s = env.settings;
  // By the whole local part: user+a and user+b are two deliveries, as in Postfix.
  if (run.dup.beenHere(`mailbox ${parts.local}`)) return true;
  const mapped = await transportFromMaps(run, lv, s.mailboxTransportMaps, parts.user);
  if (mapped === null) return true;
  if (mapped || s.mailboxTransport) {
    await passToTransport(run, lv, mapped || s.mailboxTransport);
    return true;
  }
  const pw = env.lookupUser(parts.user);
  if (!pw) return false;
  const user: UserAttr = {
    uid: pw.uid,
    gid: pw.gid,
    logname: pw.name,
    home: pw.home,
    shell: pw.shell,
  };
  let command = "";
  for (const spec of s.mailboxCommandMaps) {
    try {
      const value = await env.openTable(spec).lookup(parts.user);
      if (value !== undefined) {
        command = value;
        break;
      }
    } catch (err) {
      warn(`${spec} lookup error for "${parts.user}": ${(err as Error).message}`);
      fail(run, lv, "4.3.0", "mail system configuration error");
      return true;
    }
  }
  command ||= s.mailboxCommand;
  const mailboxLevel: Level = { ...lv, user };
  if (command) {
    await runDeliveryCommand(run, mailboxLevel, command, parts);
    return true;
  }
  if (s.homeMailbox) {
    const path = `${pw.home}/${s.homeMailbox}`;
    if (path.endsWith("/")) await toMaildir(run, mailboxLevel, path, user, "file");
    else await toMbox(run, mailboxLevel, path, user, { home: true, parts });
  } else {
    const path = `${s.mailSpoolDirectory.replace(/\/$/, "")}/${parts.user}`;
    if (s.mailSpoolDirectory.endsWith("/")) {
      await toMaildir(run, mailboxLevel, `${path}/`, user, "file");
    } else {
      await toMbox(run, mailboxLevel, path, user, { home: false, parts });
    }
  }
  return true;
}

function lockOptions(run: RecipientRun) {
  const s = run.env.settings;
  return {
    styles: parseLockStyles(s.mailboxDeliveryLock.join(" ")),
    attempts: s.deliverLockAttempts,
    delay: s.deliverLockDelay,
    staleTime: s.staleLockTime,
    sizeLimit: s.mailboxSizeLimit,
  };
}

/** The user's mbox: in the spool created with root's rights for the user, at home with the user's. */
async function toMbox(
  run: RecipientRun,
  lv: Level,
  path: string,
  user: UserAttr,
  where: { home: boolean; parts: AddressParts },
): Promise<void> {
  const env = run.env;
  const s = env.settings;
  if (run.session.verifyOnly) return record(run, lv, "sent", "2.0.0", "delivers to mailbox");
  const own = env.privileged ? user.uid : (Deno.uid() ?? 0);
  // Where this message will start, for biff (the file is locked only later).
  const offset = s.biff ? mailboxSize(path) : 0;
  let result: MailboxResult;
  try {
    result = await deliverToMbox({
      ...lockOptions(run),
      path,
      sender: lv.sender,
      content: run.content,
      prepend: prependHeaders(run, lv, {
        returnPath: true,
        delivered: s.prependDeliveredHeader.has("file"),
      }),
      identity: where.home ? identityOf(run, user) : undefined,
      createOwner: env.privileged && !where.home ? { uid: user.uid, gid: user.gid } : undefined,
      dotlockMayFail: !where.home,
      defaultDsn: "5.2.0",
      requireOwner: s.strictMailboxOwnership ? own : undefined,
    });
  } catch (err) {
    result = { ok: false, dsn: "4.3.0", text: (err as Error).message };
  }
  if (result.ok) {
    if (s.biff) await notifyBiff(where.parts.user, offset, env.biffTarget);
    return record(run, lv, "sent", "2.0.0", "delivered to mailbox");
  }
  fail(
    run,
    lv,
    result.dsn,
    `cannot update mailbox ${path} for user ${where.parts.user}. ${result.text}`,
  );
}

/** A maildir (home_mailbox or mail_spool_directory ending in "/", or a /file/ destination). */
function toMaildir(
  run: RecipientRun,
  lv: Level,
  dir: string,
  user: UserAttr,
  context: "file",
): void {
  const s = run.env.settings;
  if (run.session.verifyOnly) return record(run, lv, "sent", "2.0.0", "delivers to maildir");
  let result: MailboxResult;
  try {
    result = deliverToMaildir({
      dir,
      content: run.content,
      prepend: prependHeaders(run, lv, {
        returnPath: true,
        delivered: s.prependDeliveredHeader.has(context),
      }),
      sizeLimit: s.mailboxSizeLimit,
      identity: identityOf(run, user),
      hostname: s.myhostname,
    });
  } catch (err) {
    result = { ok: false, dsn: "4.3.0", text: (err as Error).message };
  }
  if (result.ok) return record(run, lv, "sent", "2.0.0", "delivered to maildir");
  fail(run, lv, result.dsn, `maildir delivery failed: ${result.text}`);
}

/** A /file destination of an alias, .forward or :include: file. */
export async function deliverFile(
  run: RecipientRun,
  lv: Level,
  path: string,
  expType: ExpandType,
): Promise<void> {
  const s = run.env.settings;
  if (!allowed(s.allowMailToFiles, expType)) {
    return fail(run, lv, "5.7.1", "mail to file is restricted");
  }
  const user = commandRights(run, lv.user);
  if (run.dup.beenHere(`file ${user.uid} ${path}`)) return;
  if (path.endsWith("/")) return toMaildir(run, lv, path, user, "file");
  if (run.session.verifyOnly) {
    return record(run, lv, "sent", "2.0.0", `delivers to file: ${path}`);
  }
  let result: MailboxResult;
  try {
    result = await deliverToMbox({
      ...lockOptions(run),
      path,
      sender: lv.sender,
      content: run.content,
      prepend: prependHeaders(run, lv, {
        returnPath: true,
        delivered: s.prependDeliveredHeader.has("file"),
      }),
      identity: identityOf(run, user),
      dotlockMayFail: true,
      defaultDsn: "5.2.0",
    });
  } catch (err) {
    result = { ok: false, dsn: "4.3.0", text: (err as Error).message };
  }
  if (result.ok) return record(run, lv, "sent", "2.0.0", `delivered to file: ${path}`);
  fail(run, lv, result.dsn, `cannot append message to file ${path}: ${result.text}`);
}

/** A |command destination of an alias, .forward or :include: file. */
export async function deliverCommand(
  run: RecipientRun,
  lv: Level,
  command: string,
  expType: ExpandType,
): Promise<void> {
  const s = run.env.settings;
  if (!allowed(s.allowMailToCommands, expType)) {
    return fail(run, lv, "5.7.1", "mail to command is restricted");
  }
  const user = commandRights(run, lv.user);
  if (run.dup.beenHere(`command ${user.uid} ${command}`)) return;
  const parts = addressParts(lv.address, s.recipientDelimiter, s.ownerRequestSpecial);
  await runDeliveryCommand(run, { ...lv, user }, command, parts);
}

/** The environment Postfix's local(8) gives a command, each value through command_expansion_filter. */
export function commandEnv(
  run: RecipientRun,
  lv: Level,
  user: UserAttr,
  parts: AddressParts,
): Record<string, string> {
  const s = run.env.settings;
  const attrs = run.session.request.attrs;
  const env: Record<string, string> = {};
  const set = (name: string, value: string | undefined) => {
    if (value === undefined) return;
    let out = "";
    for (const ch of value) out += s.commandExpansionFilter.includes(ch) ? ch : "_";
    env[name] = out;
  };
  // HOME and SHELL only in a user's context (not for a root-owned alias);
  // USER and LOGNAME are the bare recipient name, as Postfix sets them.
  set("SHELL", user.shell);
  set("HOME", user.home);
  set("USER", parts.user);
  set("LOGNAME", parts.user);
  set("SENDER", lv.sender);
  set("RECIPIENT", lv.address);
  set("LOCAL", parts.local);
  set("ORIGINAL_RECIPIENT", run.top.origRcpt || run.top.address);
  set("DOMAIN", parts.domain);
  if (parts.extension) set("EXTENSION", parts.extension);
  set("CLIENT_ADDRESS", attrs.client_address);
  set("CLIENT_HELO", attrs.helo_name);
  set("CLIENT_HOSTNAME", attrs.client_name);
  set("CLIENT_PROTOCOL", attrs.protocol_name);
  set("SASL_METHOD", attrs.sasl_method);
  set("SASL_SENDER", attrs.sasl_sender);
  set("SASL_USERNAME", attrs.sasl_username);
  return env;
}

/** Runs a delivery command (alias/.forward destination or mailbox_command) with the message on stdin. */
async function runDeliveryCommand(
  run: RecipientRun,
  lv: Level,
  command: string,
  parts: AddressParts,
): Promise<void> {
  const s = run.env.settings;
  if (run.session.verifyOnly) {
    return record(run, lv, "sent", "2.0.0", `delivers to command: ${command}`);
  }
  const user = commandRights(run, lv.user);
  let cwd = s.queueDirectory;
  if (s.commandExecutionDirectory) {
    try {
      cwd = localExpand(
        s.commandExecutionDirectory,
        expandAttrs(lv, parts, lv.user),
        s.executionDirectoryExpansionFilter,
      );
    } catch (err) {
      warn(`bad command_execution_directory value: ${(err as Error).message}`);
      return fail(run, lv, "4.3.5", "mail system configuration error");
    }
  }
  const head = new TextEncoder().encode(fromLine(lv.sender, new Date()));
  const body = messageBytes(run.content, {
    prepend: prependHeaders(run, lv, {
      returnPath: true,
      delivered: s.prependDeliveredHeader.has("command"),
    }),
  });
  const stdin = new Uint8Array(head.length + body.length);
  stdin.set(head);
  stdin.set(body, head.length);
  const r = await runCommand({
    command,
    shell: s.localCommandShell || undefined,
    // Another user's rights only where this process can give them.
    uid: run.env.privileged ? user.uid : undefined,
    gid: run.env.privileged ? user.gid : undefined,
    env: commandEnv(run, lv, user, parts),
    exportEnvironment: s.exportEnvironment,
    stdin,
    cwd,
    timeLimit: s.commandTimeLimit,
    program: "local",
  });
  if (r.outcome === "sent") {
    return record(run, lv, "sent", "2.0.0", `delivered to command: ${command}`);
  }
  record(run, lv, r.outcome, r.dsn, r.text, { diagText: r.diagText });
}
