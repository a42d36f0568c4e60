// Queue instances for the queue-tool tests and benchmark: the reference
// queue of tests/golden/showq/queue.tar unpacked into a temporary folder, or
// an empty queue filled with generated messages written by lib/queue.

import { createQueueTree, type QueueLayout } from "../../lib/queue/layout.ts";
import { commitQueueFile, createQueueFile, writeAllSync } from "../../lib/queue/file.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import { projectRoot } from "../run.ts";

/** The golden folder of the queue tools. */
export const goldenDir = `${projectRoot}tests/golden/showq/`;

/** A throwaway instance: config folder, queue, maillog, and the environment to run programs in. */
export interface QueueInstance {
  dir: string;
  configDir: string;
  queueDir: string;
  maillog: string;
  layout: QueueLayout;
  env: Record<string, string>;
}

/** An instance with an empty queue tree; `extra` goes to main.cf. */
export function emptyInstance(extra = ""): QueueInstance {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-showq-" });
  const configDir = `${dir}/etc`;
  const queueDir = `${dir}/queue`;
  Deno.mkdirSync(configDir);
  Deno.writeTextFileSync(
    `${configDir}/main.cf`,
    `queue_directory = ${queueDir}\nmaillog_file = ${dir}/maillog\n` +
      `maillog_file_prefixes = ${dir}\nmyhostname = test.example.com\n${extra}`,
  );
  const layout = {
    queueDirectory: queueDir,
    hashQueueNames: ["deferred", "defer"],
    hashQueueDepth: 1,
  };
  createQueueTree(layout);
  return {
    dir,
    configDir,
    queueDir,
    maillog: `${dir}/maillog`,
    layout,
    env: {
      MAIL_CONFIG: configDir,
      TZ: "UTC",
      POSTHORN_LAUNCHER:
        `${Deno.execPath()} run -A --unstable-ffi --unstable-net ${projectRoot}mod.ts`,
    },
  };
}

/** An instance holding the reference's queue (modes, owners kept where we may). */
export function goldenInstance(extra = ""): QueueInstance {
  const inst = emptyInstance(extra);
  const out = new Deno.Command("tar", {
    args: ["-xf", `${goldenDir}queue.tar`, "-C", inst.queueDir, "--no-same-owner"],
    stderr: "null",
  }).outputSync();
  if (!out.success) throw new Error("tar -xf queue.tar failed");
  return inst;
}

/** Removes the instance. */
export function removeInstance(inst: QueueInstance): void {
  Deno.removeSync(inst.dir, { recursive: true });
}

/** The records of a queue file as cleanup writes one (C, T, S, R..., M, text, X, E). */
export function messageFile(
  sender: string,
  recipients: string[],
  lines: string[],
  arrival: number,
): Uint8Array {
  const head = [
    encodeRecord("T", `${arrival} 0`),
    encodeRecord("A", "rewrite_context=local"),
    encodeRecord("S", sender),
    ...recipients.map((r) => encodeRecord("R", r)),
    encodeRecord("M"),
  ];
  const text = joinRecords(lines.map((l) => encodeRecord("N", l)));
  const tail = joinRecords([encodeRecord("X"), encodeRecord("E")]);
  // The C record is fixed width (6 fields of 15), so its size is known up front.
  const sizeLen = encodeRecord("C", " ".repeat(6 * 15 + 5)).length;
  const headBytes = joinRecords(head);
  const dataOffset = sizeLen + headBytes.length;
  const fields = [text.length, dataOffset, recipients.length, 0, text.length, 0];
  const size = encodeRecord("C", fields.map((f) => String(f).padStart(15)).join(" "));
  return joinRecords([size, headBytes, text, tail]);
}

/** Writes one committed message into `queue`; returns its id. */
export function addMessage(
  layout: QueueLayout,
  queue: string,
  sender: string,
  recipients: string[],
  arrival = 1795535618,
): string {
  const qf = createQueueFile(layout, queue);
  writeAllSync(qf.file, messageFile(sender, recipients, ["Subject: test", "", "body"], arrival));
  commitQueueFile(qf);
  return qf.id;
}

/**
 * Fills a queue with `count` generated messages, named and marked complete
 * as lib/queue does but without an fsync per file (test data, not mail).
 */
export function fillQueue(layout: QueueLayout, queue: string, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const qf = createQueueFile(layout, queue);
    const data = messageFile(`sender${i}@example.com`, [`rcpt${i}@remote.test`], [
      "Subject: test",
      "",
      "body",
    ], 1795535618 + i);
    writeAllSync(qf.file, data);
    Deno.chmodSync(qf.path, qf.completeMode);
    qf.file.close();
    ids.push(qf.id);
  }
  return ids;
}

/** Every file under the queue, relative paths, sorted. */
export function queueFiles(inst: QueueInstance): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`, `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  walk(inst.queueDir, "");
  return out.sort();
}
