// Reference comparison: the scripted sessions of tests/golden/smtpd/ replayed
// against Posthorn's smtpd, reply by reply, against the replies the
// reference smtpd gave (NAME.ref, made by make_refs.ts).

import { assertEquals } from "../../assert.ts";
import { replay } from "../../golden/smtpd/replay.ts";
import { sessions } from "../../golden/smtpd/sessions.ts";
import { start, stop } from "./helpers.ts";

const golden = new URL("../../golden/smtpd/", import.meta.url).pathname;

Deno.test({
  name: "smtpd replies as the reference smtpd does to every scripted session",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const inst = await start();
    try {
      for (const [name, lines] of Object.entries(sessions)) {
        await t.step(name, async () => {
          const want = Deno.readTextFileSync(`${golden}${name}.ref`).trimEnd().split("\n");
          const got = (await replay(inst.port, "mx.example.com", lines)).join("\n").split("\n");
          assertEquals(got, want);
        });
      }
    } finally {
      await stop(inst);
    }
  },
});
