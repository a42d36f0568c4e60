// Who is submitting: the login name and full name of the calling user, from
// the password file, as sendmail reports them in the sender and F records.

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
