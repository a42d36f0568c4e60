// Benchmark: the per-message library work under every daemon of the mail
// path, in process: creating and committing a queue file (open, link, fsync)
// and decoding attribute lists (AttrReader), small ones back to back and one
// large list arriving in 4 KB chunks. No reference figure: the reference
// has no in-process equivalent.

import { createQueueTree, type QueueLayout } from "../../lib/queue/layout.ts";
import { commitQueueFile, createQueueFile, writeAllSync } from "../../lib/queue/file.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";

function queueFiles(count: number): void {
  const dir = Deno.makeTempDirSync({ prefix: "bench-queue-file-" });
  try {
    const layout: QueueLayout = { queueDirectory: dir, hashQueueNames: [], hashQueueDepth: 1 };
    createQueueTree(layout);
    const data = new Uint8Array(2000).fill(65);
    let create = 0;
    let commit = 0;
    for (let i = 0; i < count; i++) {
      const a = performance.now();
      const qf = createQueueFile(layout, "incoming");
      const b = performance.now();
      writeAllSync(qf.file, data);
      const c = performance.now();
      commitQueueFile(qf);
      create += b - a;
      commit += performance.now() - c;
    }
    console.log(
      `queue file: create ${(create / count).toFixed(3)} ms, commit ${
        (commit / count).toFixed(3)
      } ms ` +
        `per 2 KB file (${count} files)`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function attrLists(): void {
  const small = encodeAttrs({ request: "rewrite", rule: "local", address: "someone@example.com" });
  let t = performance.now();
  const reader = new AttrReader();
  let lists = 0;
  for (let i = 0; i < 100_000; i++) lists += reader.push(small).length;
  const smallMs = performance.now() - t;
  const big = encodeAttrs({ value: "x".repeat(1 << 20) });
  t = performance.now();
  const bigReader = new AttrReader();
  for (let i = 0; i < big.length; i += 4096) {
    lists += bigReader.push(big.subarray(i, i + 4096)).length;
  }
  const bigMs = performance.now() - t;
  console.log(
    `attr lists: 100000 small lists in ${smallMs.toFixed(0)} ms; ` +
      `one 1 MB list in 4 KB chunks in ${bigMs.toFixed(1)} ms (${lists} lists)`,
  );
}

/** Prints queue-file and attribute-list figures. */
export async function bench(): Promise<void> {
  queueFiles(500);
  attrLists();
  await Promise.resolve();
}

if (import.meta.main) await bench();
