// showq run by the master from master.cf, as in a real instance: postqueue
// and the service meet on public/showq, under mail_owner when run as root.

import { assertEquals } from "../assert.ts";
import { runProgram } from "../run.ts";
import { Instance, testUser, waitFor } from "./master/instance.ts";
import { addMessage } from "./showq_fixture.ts";

function uidOf(user: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", user], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout)) : undefined;
}

Deno.test("postqueue -p reaches the showq service the master runs", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const inst = await Instance.create("showq unix n - n - - showq\n");
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    await waitFor(() => {
      try {
        return Deno.statSync(`${inst.queue}/public/showq`).isSocket;
      } catch {
        return false;
      }
    });
    const layout = {
      queueDirectory: inst.queue,
      hashQueueNames: ["deferred", "defer"],
      hashQueueDepth: 1,
    };
    const id = addMessage(layout, "incoming", "alice@example.com", ["bob@example.com"]);
    const hold = addMessage(layout, "hold", "carol@example.com", ["dave@example.com"]);
    // Queue files belong to mail_owner, as cleanup would have written them.
    const uid = Deno.uid() === 0 ? uidOf(testUser) : undefined;
    if (uid !== undefined) {
      for (const f of [`incoming/${id}`, `hold/${hold}`]) {
        Deno.chownSync(`${inst.queue}/${f}`, uid, null);
      }
    }
    const env = { MAIL_CONFIG: inst.dir, TZ: "UTC" };
    const got = await runProgram("postqueue", ["-p"], { env });
    assertEquals(got.stderr, "");
    assertEquals(got.code, 0);
    const lines = got.stdout.split("\n");
    assertEquals(lines[0], "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------");
    assertEquals(lines.filter((l) => l.startsWith(id) || l.startsWith(`${hold}!`)).length, 2);
    assertEquals(lines.at(-2), "-- 0 Kbytes in 2 Requests.");
    const json = await runProgram("postqueue", ["-j"], { env });
    assertEquals(json.stdout.trim().split("\n").length, 2);
  } finally {
    await inst.destroy();
  }
});
