// Regenerates NAME.ref and NAME.log for the restriction cases from a
// reference instance: `deno run -A make_restriction_refs.ts DIR PORT HOST`,
// DIR being the reference's configuration folder (queue under DIR/queue,
// log in DIR/maillog). main.cf is rewritten for each case and reloaded.

import { replay } from "./replay.ts";
import { restrictionCases } from "./restrictions.ts";
import { baseCf } from "../../daemons/smtpd/helpers.ts";

const [dir, port, host] = Deno.args;
if (!dir || !port || !host) throw new Error("usage: make_restriction_refs.ts DIR PORT HOST");
const here = new URL(".", import.meta.url).pathname;

/** The log lines a comparison keeps, with queue ids and pids taken out. */
export function actionLines(log: string, hostName: string): string[] {
  return log.split("\n").filter((l) => /: (reject|reject_warning|hold|discard|warn): /.test(l))
    .map((l) => l.replace(/^.*?smtpd\[\d+\]: /, "").replace(/^[0-9A-Za-z]+: /, "QUEUEID: ")
      .replaceAll(hostName, "MYHOST"));
}

for (const c of restrictionCases) {
  for (const [name, text] of Object.entries(c.tables ?? {})) {
    Deno.writeTextFileSync(`${dir}/${name}`, text.replaceAll("MYHOST", host));
  }
  Deno.writeTextFileSync(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\nmail_owner = postfix\n` +
      `setgid_group = postdrop\nmaillog_file = ${dir}/maillog\nmaillog_file_prefixes = /tmp\n` +
      baseCf.replace("myhostname = mx.example.com", `myhostname = ${host}`)
        .replace("hash_queue_names =\n", "") +
      c.cf.replaceAll("DIR", dir),
  );
  const reload = await new Deno.Command("postfix", { args: ["-c", dir, "reload"] }).output();
  if (!reload.success) await new Deno.Command("postfix", { args: ["-c", dir, "start"] }).output();
  await new Promise((r) => setTimeout(r, 1500));
  const offset = Deno.readTextFileSync(`${dir}/maillog`).length;
  const replies = await replay(Number(port), host, c.lines);
  await new Promise((r) => setTimeout(r, 500));
  const log = Deno.readTextFileSync(`${dir}/maillog`).slice(offset);
  Deno.writeTextFileSync(`${here}${c.name}.ref`, replies.join("\n") + "\n");
  Deno.writeTextFileSync(`${here}${c.name}.log`, actionLines(log, host).join("\n") + "\n");
}
