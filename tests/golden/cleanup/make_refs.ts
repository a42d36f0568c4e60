// Regenerates the reference outputs of the cleanup comparison from a running
// reference Postfix: `deno run -A make_refs.ts DIR`, where DIR is a reference
// instance (main.cf with queue_directory=DIR/queue, maillog_file=DIR/maillog,
// and a master.cf with pickup, cleanup, trivial-rewrite, bounce and postlog
// but no qmgr, so queue files stay in incoming). Extra arguments name the
// cases to regenerate. For each case it writes NAME.maildrop (the input),
// NAME.queue (the reference's queue file, when one was queued) and NAME.log
// (the reference's pickup and cleanup log lines, queue id as QUEUEID).

import { MaildropWriter } from "../../../lib/queue/maildrop.ts";
import { cases, mainCf, tables } from "./cases.ts";

const dir = Deno.args[0];
if (!dir) throw new Error("usage: make_refs.ts REFERENCE-INSTANCE-DIR");
const here = new URL(".", import.meta.url).pathname;
const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };

for (const [name, text] of Object.entries(tables)) Deno.writeTextFileSync(`${dir}/${name}`, text);

let currentCf: string | undefined;
/** Writes main.cf with the case's additions and reloads the reference when it changed. */
async function configure(extra: string): Promise<void> {
  if (extra === currentCf) return;
  currentCf = extra;
  Deno.writeTextFileSync(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\nmail_owner = postfix\n` +
      `setgid_group = postdrop\nmaillog_file = ${dir}/maillog\nmaillog_file_prefixes = /tmp\n` +
      `inet_interfaces = loopback-only\n` + mainCf.replaceAll("DIR", dir) + extra + "\n",
  );
  await new Deno.Command("postfix", { args: ["-c", dir, "reload"] }).output();
  await new Promise((r) => setTimeout(r, 1500));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logSince(offset: number): string {
  return Deno.readTextFileSync(`${dir}/maillog`).slice(offset);
}

const only = new Set(Deno.args.slice(1));
for (const c of cases) {
  if (only.size && !only.has(c.name)) continue;
  await configure(c.cf ?? "");
  const start = Deno.readTextFileSync(`${dir}/maillog`).length;
  const w = new MaildropWriter(layout);
  w.add("A", "rewrite_context=local");
  w.add("F", c.fullname ?? "");
  w.add("S", c.sender);
  for (const r of c.recipients) w.add("R", r);
  w.add("M");
  const lines = c.text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  // Long lines go as L fragments of line_length_limit bytes and an N, as sendmail writes them.
  for (const line of lines) {
    const bytes = new TextEncoder().encode(line);
    let at = 0;
    for (; bytes.length - at >= 2048; at += 2048) w.add("L", bytes.subarray(at, at + 2048));
    w.add("N", bytes.subarray(at));
  }
  w.add("X");
  w.add("E");
  const dropId = w.commit();
  // The reference's pickup runs as mail_owner and reads the file through its other-read bit.
  Deno.chmodSync(w.path, 0o744);
  Deno.copyFileSync(w.path, `${here}${c.name}.maildrop`);
  await new Deno.Command("postkick", { args: ["-c", dir, "public", "pickup", "W"] }).output();
  let id = "";
  for (let t = 0; t < 100 && !id; t++) {
    await sleep(100);
    id = /postfix\/pickup\[\d+\]: (\w+): uid=/.exec(logSince(start))?.[1] ?? "";
  }
  if (!id) {
    console.log(`${c.name}: pickup did not take ${dropId}`);
    continue;
  }
  await sleep(1000);
  const log = logSince(start).split("\n")
    .filter((l) => l.includes(`${id}:`) || l.includes("warning"))
    .map((l) => l.replace(/^.*? postfix\/(\w+)\[\d+\]: /, "$1: ").replaceAll(id, "QUEUEID"));
  Deno.writeTextFileSync(`${here}${c.name}.log`, log.join("\n") + "\n");
  for (const q of ["incoming", "hold"]) {
    try {
      const data = Deno.readFileSync(`${dir}/queue/${q}/${id}`);
      Deno.writeFileSync(`${here}${c.name}.${q}`, data);
    } catch {
      // Not in this queue.
    }
  }
  console.log(c.name, id);
}
