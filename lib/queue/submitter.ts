// Who is submitting: the login name and full name of the calling user, from
// the password file, as sendmail reports them in the sender and F records.

import { fatal } from "../log.ts";

/** One password-file entry, the fields a submitter needs. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
}

/** The password-file entry of `uid`, or null when there is none. */
export function passwdByUid(uid: number, file = "/etc/passwd"): PasswdEntry | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || Number(f[2]) !== uid || f[2] === "") continue;
    return { name: f[0], uid, gid: Number(f[3]), gecos: f[4], home: f[5] };
  }
  return null;
}

/** The password-file entry of user `name`, or null. */
export function passwdByName(name: string, file = "/etc/passwd"): PasswdEntry | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] !== name) continue;
    return { name, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4], home: f[5] };
  }
  return null;
}

/** The full name in a GECOS field: the first comma-separated part, `&` as the login name. */
export function gecosFullName(entry: PasswdEntry): string {
  const first = entry.gecos.split(",")[0];
  return first.replaceAll("&", entry.name.charAt(0).toUpperCase() + entry.name.slice(1));
}

/** Opens table `spec` (type:name) for lookups; supplied by the caller (maps/ openMap). */
export type TableOpener = (spec: string) => Promise<{
  lookup(key: string): Promise<string | undefined>;
  close(): Promise<void>;
}>;

/**
 * authorized_submit_users: whether login name `login` may submit mail.
 * The list is Postfix's match list: names (case-insensitive), `type:table`
 * lookups of the name, `!` to negate; the first match decides, no match
 * denies, an empty list denies everyone. `static:` tables match any name
 * without opening anything (the default is static:anyone).
 */
export async function isAuthorizedSubmitter(
  list: string[],
  login: string,
  openTable: TableOpener,
): Promise<boolean> {
  for (const raw of list) {
    let item = raw;
    let negate = false;
    while (item.startsWith("!")) {
      negate = !negate;
      item = item.slice(1);
    }
    let matched: boolean;
    if (item.startsWith("static:")) matched = true;
    else if (/^[a-z][a-z0-9_-]*:/i.test(item)) matched = await tableHas(openTable, item, login);
    else matched = item.toLowerCase() === login.toLowerCase();
    if (matched) return !negate;
  }
  return false;
}

async function tableHas(openTable: TableOpener, spec: string, key: string): Promise<boolean> {
  const table = await openTable(spec);
  try {
    return (await table.lookup(key)) !== undefined;
  } finally {
    await table.close();
  }
}

/** The login name authorized_submit_users is checked against: "unknown" without a passwd entry. */
export function submitterLogin(uid: number): string {
  return passwdByUid(uid)?.name ?? "unknown";
}

/**
 * Enforces authorized_submit_users for `uid` as Postfix's sendmail and
 * postdrop do: fatal "User NAME(UID) is not allowed to submit mail".
 */
export async function checkSubmitter(
  list: string[],
  uid: number,
  openTable: TableOpener,
): Promise<void> {
  const login = submitterLogin(uid);
  let allowed: boolean;
  try {
    allowed = await isAuthorizedSubmitter(list, login, openTable);
  } catch (err) {
    fatal(`authorized_submit_users: ${(err as Error).message}`);
  }
  if (!allowed) fatal(`User ${login}(${uid}) is not allowed to submit mail`);
}
