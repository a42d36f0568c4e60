// Regenerates NAME.ref from a running reference smtpd:
// `deno run -A make_refs.ts PORT MYHOSTNAME`. The reference instance uses the
// main.cf of tests/daemons/smtpd/helpers.ts (baseCf) with its own
// myhostname; replies are stored with MYHOST in place of the host name.

import { replay } from "./replay.ts";
import { sessions } from "./sessions.ts";

const [port, host] = Deno.args;
if (!port || !host) throw new Error("usage: make_refs.ts PORT MYHOSTNAME");
const here = new URL(".", import.meta.url).pathname;
for (const [name, lines] of Object.entries(sessions)) {
  const replies = await replay(Number(port), host, lines);
  Deno.writeTextFileSync(`${here}${name}.ref`, replies.join("\n") + "\n");
}
