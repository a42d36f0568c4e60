// The reference trivial-rewrite(8) as an oracle: its daemon binary runs in
// stand-alone mode (-S, one client on standard input and output) against a
// throwaway configuration directory, no master and no instance needed, and
// answers the same attribute-list requests Posthorn's service does.

import { type AttrList, AttrReader, encodeAttrs } from "../../../lib/ipc/attr.ts";

/** The reference daemon, when the reference Postfix is installed. */
export const REFERENCE_DAEMON = "/usr/lib/postfix/sbin/trivial-rewrite";

/** Whether the reference daemon can be run here. */
export function haveReference(): boolean {
  try {
    return Deno.statSync(REFERENCE_DAEMON).isFile;
  } catch {
    return false;
  }
}

/**
 * Runs the reference with main.cf text `mainCf` (plus files written beside
 * it, named relative to the config directory, where "$dir" in main.cf and
 * in file names stands for that directory) and returns its reply to each
 * request, in order.
 */
export async function referenceReplies(
  mainCf: string,
  files: Record<string, string>,
  requests: Record<string, string>[],
  pids: number[] = [],
  allowNoAnswer = false,
): Promise<AttrList[]> {
  const dir = await Deno.makeTempDir({ prefix: "tr-ref-" });
  try {
    await Deno.mkdir(`${dir}/queue`);
    await Deno.mkdir(`${dir}/data`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("$dir", dir));
    }
    await Deno.writeTextFile(
      `${dir}/main.cf`,
      `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\n` +
        mainCf.replaceAll("$dir", dir),
    );
    // In stand-alone mode the reference answers one request per process.
    const replies: AttrList[] = [];
    for (let i = 0; i < requests.length; i += 8) {
      const batch = requests.slice(i, i + 8).map((r) => askOnce(dir, r, pids, allowNoAnswer));
      replies.push(...await Promise.all(batch));
    }
    return replies;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function askOnce(
  dir: string,
  request: Record<string, string>,
  pids: number[],
  allowNoAnswer: boolean,
): Promise<AttrList> {
  const child = new Deno.Command(REFERENCE_DAEMON, {
    args: ["-S"],
    env: { MAIL_CONFIG: dir },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  pids.push(child.pid);
  const writer = child.stdin.getWriter();
  await writer.write(encodeAttrs(request));
  await writer.close();
  const out = await child.output();
  const replies = new AttrReader().push(out.stdout);
  // The reference panics on some inputs (a rewrite of white space only).
  if (replies.length !== 1 && allowNoAnswer) return new Map([["(no answer)", "daemon died"]]);
  if (replies.length !== 1) {
    throw new Error(`reference gave no answer to ${JSON.stringify(request)}`);
  }
  return replies[0];
}

/** A running reference master serving only trivial-rewrite, on private/rewrite. */
export interface ReferenceInstance {
  dir: string;
  socket: string;
  stop(): Promise<void>;
}

/** The reference's master, when it can be run here (as root, Postfix installed). */
export function canRunReferenceInstance(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/usr/lib/postfix/sbin/master").isFile &&
      haveReference();
  } catch {
    return false;
  }
}

/**
 * Starts the reference master in a throwaway folder with a master.cf that
 * has the rewrite service alone (no chroot), main.cf from BASE plus `mainCf`.
 * Its socket speaks to any client, Posthorn's rewrite client included.
 */
export async function startReferenceInstance(mainCf: string): Promise<ReferenceInstance> {
  const dir = await Deno.makeTempDir({ prefix: "tr-refinst-" });
  for (const sub of ["queue/pid", "queue/private", "queue/public", "data"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  // The reference drops to mail_owner for its lock file and sockets.
  await Deno.chmod(dir, 0o755);
  const owned = ["data", "queue/private", "queue/public"].map((d) => `${dir}/${d}`);
  await new Deno.Command("chown", { args: ["postfix", ...owned] }).output();
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\n` +
      `syslog_name = postfix-trtest\n${mainCf}`,
  );
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    "rewrite unix - - n - - trivial-rewrite\n",
  );
  const out = await new Deno.Command("/usr/lib/postfix/sbin/master", {
    args: ["-w"],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`reference master: ${new TextDecoder().decode(out.stderr)}`);
  }
  const socket = `${dir}/queue/private/rewrite`;
  for (let i = 0; i < 100; i++) {
    try {
      Deno.statSync(socket);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    dir,
    socket,
    async stop() {
      try {
        const pid = parseInt(Deno.readTextFileSync(`${dir}/queue/pid/master.pid`).trim(), 10);
        if (pid > 0) Deno.kill(pid, "SIGTERM");
        for (let i = 0; i < 50; i++) {
          try {
            Deno.kill(pid, "SIGCONT");
            await new Promise((r) => setTimeout(r, 50));
          } catch {
            break;
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}
