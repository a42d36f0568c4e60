// A separate process appending messages to one mbox, for the concurrency
// test: `append_worker.ts PATH ID COUNT STYLES`.

import { deliverToMbox, parseLockStyles } from "../../../lib/mailbox/mod.ts";
import { message } from "./fixture.ts";

const [path, id, count, styles] = Deno.args;
for (let i = 0; i < Number(count); i++) {
  const body = Array.from({ length: 40 }, (_, n) => `worker ${id} message ${i} line ${n}`);
  const r = await deliverToMbox({
    path,
    sender: `w${id}@example.com`,
    content: message([`Subject: ${id}/${i}`, "", ...body]),
    styles: parseLockStyles(styles),
    attempts: 1000,
    delay: 0.005,
  });
  if (!r.ok) {
    console.error(r.text);
    Deno.exit(1);
  }
}
