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
      const batch = requests.slice(i, i + 8).map((r) => askOnce(dir, r));
      replies.push(...await Promise.all(batch));
    }
    return replies;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function askOnce(dir: string, request: Record<string, string>): Promise<AttrList> {
  const child = new Deno.Command(REFERENCE_DAEMON, {
    args: ["-S"],
    env: { MAIL_CONFIG: dir },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encodeAttrs(request));
  await writer.close();
  const out = await child.output();
  const replies = new AttrReader().push(out.stdout);
  if (replies.length !== 1) {
    throw new Error(`reference gave no answer to ${JSON.stringify(request)}`);
  }
  return replies[0];
}
