// Password-file lookups for local(8): the fields a delivery needs (name,
// uid, gid, home directory and shell), by name and by uid. Read from
// /etc/passwd as getpwnam(3) does with the files service.

/** One password-file entry. */
export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

let cache: { text: string; mtime: number; path: string } | undefined;

function passwdText(path: string): string {
  // Re-read only when the file changed: a delivery looks users up often.
  const st = Deno.statSync(path);
  const mtime = st.mtime?.getTime() ?? 0;
  if (!cache || cache.path !== path || cache.mtime !== mtime) {
    cache = { text: Deno.readTextFileSync(path), mtime, path };
  }
  return cache.text;
}

function find(match: (f: string[]) => boolean, path: string): LocalUser | undefined {
  let text: string;
  try {
    text = passwdText(path);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[2] === "" || !match(f)) continue;
    return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
  }
  return undefined;
}

/** The entry of user `name` (exact, case-sensitive as getpwnam), or undefined. */
export function userByName(name: string, path = "/etc/passwd"): LocalUser | undefined {
  if (!name || name.includes(":") || name.includes("\n")) return undefined;
  return find((f) => f[0] === name, path);
}

/** The entry of uid `uid`, or undefined. */
export function userByUid(uid: number, path = "/etc/passwd"): LocalUser | undefined {
  return find((f) => Number(f[2]) === uid, path);
}
