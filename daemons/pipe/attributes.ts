// pipe(8)'s command attributes, from the end of its master.cf entry:
// `flags=... user=name[:group] size=N eol=\r\n directory=DIR chroot=DIR
// null_sender=TEXT argv=command args...`. Every mistake is fatal, with the
// wording of Postfix's pipe(8), so that the master throttles the service.

import type { Config } from "../../lib/config/mod.ts";
import { getpwnam } from "../../lib/ffi/libc.ts";
import { fatal } from "../../lib/log.ts";

/** The flags=... letters and what each one asks for. */
export const PipeFlag = {
  /** B: a blank line after the message. */
  BLANK: "B",
  /** D: a Delivered-To: header, and loop detection. */
  DELIVERED: "D",
  /** F: a "From sender time" envelope line. */
  FROM: "F",
  /** O: an X-Original-To: header. */
  ORIG_RCPT: "O",
  /** R: a Return-Path: header. */
  RETURN_PATH: "R",
  /** X: the command does final delivery (DSN "delivered", not "relayed"). */
  FINAL: "X",
  /** h: fold host and domain parts to lower case. */
  FOLD_HOST: "h",
  /** q: quote address local parts on the command line. */
  QUOTE: "q",
  /** u: fold address local parts to lower case. */
  FOLD_USER: "u",
  /** .: double a leading dot. */
  DOT: ".",
  /** >: prefix "From " lines with ">". */
  QUOTE_FROM: ">",
} as const;

const knownFlags = new Set<string>(Object.values(PipeFlag));

/** A pipe service's parsed attributes. */
export interface PipeAttributes {
  /** The flag letters given (a set). */
  flags: Set<string>;
  /** The user and group ids the command runs with, and the user's name. */
  uid: number;
  gid: number;
  user: string;
  /** size=: 0 means no limit. */
  sizeLimit: number;
  /** eol=, escapes resolved. */
  eol: string;
  /** directory=, "" for the default ($queue_directory, or the new root with chroot=). */
  directory: string;
  /** chroot=, "" for none. */
  chroot: string;
  /** null_sender= (default MAILER-DAEMON). */
  nullSender: string;
  /** argv=: the command and its arguments, macros not yet expanded. */
  argv: string[];
}

/** Resolves C escapes in eol=: \a \b \f \n \r \t \v \ddd (octal) and \\; another escaped character stands for itself. */
export function unescape(text: string): string {
  const simple: Record<string, string> = {
    a: "\x07",
    b: "\b",
    f: "\f",
    n: "\n",
    r: "\r",
    t: "\t",
    v: "\v",
  };
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== "\\" || i + 1 >= text.length) {
      out += ch;
      continue;
    }
    const next = text[++i];
    if (next in simple) out += simple[next];
    else if (/[0-7]/.test(next)) {
      let digits = next;
      while (digits.length < 3 && /[0-7]/.test(text[i + 1] ?? "")) digits += text[++i];
      out += String.fromCharCode(parseInt(digits, 8));
    } else out += next;
  }
  return out;
}

/** A group's id by name from the group database, or undefined. */
export function groupId(name: string, groupFile = "/etc/group"): number | undefined {
  let text = "";
  try {
    text = Deno.readTextFileSync(groupFile);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return parseInt(gid, 10);
  }
  return undefined;
}

/** Looks up user=name[:group]; fatal when either is unknown. */
function resolveUser(value: string): { uid: number; gid: number; user: string } {
  const colon = value.indexOf(":");
  const user = colon < 0 ? value : value.slice(0, colon);
  const entry = getpwnam(user);
  if (!entry) fatal(`get_service_attr: unknown username: ${user}`);
  let gid = entry.gid;
  if (colon >= 0) {
    const group = value.slice(colon + 1);
    const found = groupId(group);
    if (found === undefined) fatal(`get_service_attr: unknown group: ${group}`);
    gid = found;
  }
  return { uid: entry.uid, gid, user };
}

/**
 * Refuses privileges the command must never have: root, and the mail
 * system's own user and groups (it could then change the queue).
 */
function checkPrivileges(attrs: { uid: number; gid: number }, config: Config): void {
  if (attrs.uid === 0) fatal("user= command-line attribute specifies root privileges");
  const owner = config.get("mail_owner");
  const ownerEntry = getpwnam(owner);
  if (ownerEntry && attrs.uid === ownerEntry.uid) {
    fatal(`user= command-line attribute specifies mail system owner ${owner}`);
  }
  if (attrs.gid === 0) fatal("user= command-line attribute specifies privileged group id 0");
  if (ownerEntry && attrs.gid === ownerEntry.gid) {
    fatal(
      `user= command-line attribute specifies mail system owner ${owner} group id ${attrs.gid}`,
    );
  }
  const sgid = config.get("setgid_group");
  if (sgid && groupId(sgid) === attrs.gid) {
    fatal(`user= command-line attribute specifies mail system ${sgid} group id ${attrs.gid}`);
  }
}

/** Parses the attributes (the daemon's operands); fatal on any mistake. */
export function parsePipeAttributes(operands: string[], config: Config): PipeAttributes {
  const flags = new Set<string>();
  let who: { uid: number; gid: number; user: string } | undefined;
  let sizeLimit = 0;
  let eol = "\n";
  let directory = "";
  let chroot = "";
  let nullSender = "MAILER-DAEMON";
  let argv: string[] | undefined;
  for (let i = 0; i < operands.length; i++) {
    const word = operands[i];
    const eq = word.indexOf("=");
    const name = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? "" : word.slice(eq + 1);
    if (eq > 0 && name === "argv") {
      // argv= is last: the rest of the line is the command.
      argv = [value, ...operands.slice(i + 1)];
      break;
    }
    if (eq <= 0) fatal(`unknown attribute name: ${word}`);
    switch (name) {
      case "flags":
        for (const ch of value) {
          if (!knownFlags.has(ch)) fatal(`unknown flag: ${ch} (ignored)`);
          flags.add(ch);
        }
        break;
      case "user":
        who = resolveUser(value);
        break;
      case "size":
        if (!/^\d+$/.test(value)) fatal(`get_service_attr: bad size= value: ${value}`);
        sizeLimit = Number(value);
        break;
      case "eol":
        eol = unescape(value);
        break;
      case "directory":
        directory = value;
        break;
      case "chroot":
        chroot = value;
        break;
      case "null_sender":
        nullSender = value;
        break;
      default:
        fatal(`unknown attribute name: ${word}`);
    }
  }
  if (!who) fatal("missing user= command-line attribute");
  if (!argv) fatal("missing argv= command-line attribute");
  checkPrivileges(who, config);
  return { flags, ...who, sizeLimit, eol, directory, chroot, nullSender, argv };
}
