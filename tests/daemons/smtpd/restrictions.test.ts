// Restrictions against the reference: each case of
// tests/golden/smtpd/restrictions.ts (main.cf additions, access tables, a
// session) replayed on Posthorn's smtpd; replies and reject log lines must
// equal what the reference smtpd gave (NAME.ref, NAME.log).

import { assertEquals } from "../../assert.ts";
import { replay } from "../../golden/smtpd/replay.ts";
import { restrictionCases } from "../../golden/smtpd/restrictions.ts";
import { maillog, start, stop } from "./helpers.ts";

const golden = new URL("../../golden/smtpd/", import.meta.url).pathname;
const host = "mx.example.com";

/** The log lines the comparison keeps (as make_restriction_refs.ts keeps them). */
function actionLines(log: string): string[] {
  return log.split("\n").filter((l) => /: (reject|reject_warning|hold|discard|warn): /.test(l))
    .map((l) =>
      l.replace(/^.*?smtpd\[\d+\]: /, "").replace(/^[0-9A-Za-z]+: /, "QUEUEID: ").replaceAll(
        host,
        "MYHOST",
      )
    );
}

for (const c of restrictionCases) {
  Deno.test({
    name: `smtpd restriction case ${c.name} replies and logs as the reference`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const inst = await start(c.cf);
      try {
        for (const [name, text] of Object.entries(c.tables ?? {})) {
          Deno.writeTextFileSync(`${inst.dir}/${name}`, text.replaceAll("MYHOST", host));
        }
        const got = (await replay(inst.port, host, c.lines)).join("\n").split("\n");
        const want = Deno.readTextFileSync(`${golden}${c.name}.ref`).trimEnd().split("\n");
        assertEquals(got, want);
        await new Promise((r) => setTimeout(r, 100));
        const wantLog = Deno.readTextFileSync(`${golden}${c.name}.log`).trimEnd().split("\n")
          .filter(Boolean);
        assertEquals(actionLines(maillog(inst)), wantLog);
      } finally {
        await stop(inst);
      }
    },
  });
}
