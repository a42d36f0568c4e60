// pickup and cleanup, as daemons, against the reference Postfix: the
// maildrop files of tests/golden/cleanup (those that need no main.cf change)
// go through a real pickup and cleanup one at a time; the queue files and the
// pickup and cleanup log lines must be the reference's (queue ids, maildrop
// file names and times aside). The bounce the reference sends for a
// rejected message is not compared (no bounce service yet).

import { assertEquals } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";
import { cases, mainCf, tables } from "../../golden/cleanup/cases.ts";
import { start, stop, waitGone } from "./instance.ts";

const golden = new URL("../../golden/cleanup/", import.meta.url).pathname;
const dec = new TextDecoder();

/** Log lines of one message, normalized as the reference's were. */
function normalize(lines: string[], id: string): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const l = raw.replace(/^.*? postfix\/(\w+)\[\d+\]: /, "$1: ");
    // Where the reference bounces (status=bounced), Posthorn, without a bounce
    // service yet, has pickup log the refusal instead: both end the comparison.
    if (/status=bounced|^pickup: warning: maildrop\/\w+: error writing \w+: /.test(l)) break;
    if (l.includes("regexp map") || l.startsWith("bounce: ")) continue;
    out.push(
      l.replaceAll(id, "QUEUEID").replace(/<\d{14}\.QUEUEID@/, "<STAMP.QUEUEID@")
        .replace(/maildrop\/\w+/, "maildrop/FILE"),
    );
  }
  return out;
}

function records(buf: Uint8Array, id: string): string[] {
  return decodeRecords(buf).filter((r) => r.type !== "C").map((r) =>
    `${r.type} ${dec.decode(r.data)}`.replaceAll(id, "QUEUEID")
      .replace(/^A create_time=\d+$/, "A create_time=T")
      .replace(/^T \d+ \d+$/, "T")
      .replace(/^(N \tid QUEUEID; ).*$/, "$1DATE")
      .replace(/^N (Resent-)?Date: .* \(UTC\)$/, "N $1Date: NOW")
      .replace(/<\d{14}\.QUEUEID@/, "<STAMP.QUEUEID@")
  );
}

function readOptional(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch {
    return null;
  }
}

Deno.test("pickup and cleanup daemons log and queue as the reference on the cleanup cases", async () => {
  const inst = await start((dir) => {
    for (const [name, text] of Object.entries(tables)) {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
    }
    return mainCf.replaceAll("DIR", dir);
  });
  const q = inst.layout.queueDirectory;
  const maillog = () => {
    try {
      return Deno.readTextFileSync(`${inst.dir}/maillog`);
    } catch {
      return "";
    }
  };
  try {
    for (const c of cases.filter((c) => !c.cf)) {
      const before = maillog().length;
      const name = "1234567890A";
      Deno.copyFileSync(`${golden}${c.name}.maildrop`, `${q}/maildrop/${name}`);
      Deno.chmodSync(`${q}/maildrop/${name}`, 0o740);
      await sendTrigger(`${q}/public/pickup`, "W");
      await waitGone(`${q}/maildrop/${name}`);
      await new Promise((r) => setTimeout(r, 100));
      const log = maillog().slice(before).split("\n")
        .filter(Boolean);
      const id = /pickup\[\d+\]: (\w+): uid=/.exec(log.join("\n"))?.[1] ?? "none";
      const expectedLog = Deno.readTextFileSync(`${golden}${c.name}.log`).split("\n")
        .filter(Boolean);
      assertEquals(normalize(log, id), normalize(expectedLog, "QUEUEID"), c.name);
      for (const queue of ["incoming", "hold"]) {
        const ref = readOptional(`${golden}${c.name}.${queue}`);
        const ours = readOptional(`${q}/${queue}/${id}`);
        if (ref) {
          const refId = /\tid (\w+);/.exec(dec.decode(ref))![1];
          assertEquals(records(readQueueFile(`${q}/${queue}/${id}`), id), records(ref, refId));
        } else assertEquals(ours, null, `${c.name}: ${queue}`);
      }
    }
  } finally {
    await stop(inst);
  }
});
