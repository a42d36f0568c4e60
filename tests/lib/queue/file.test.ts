import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { captureLog } from "../../../lib/log.ts";
import {
  checkComplete,
  commitQueueFile,
  createQueueFile,
  QueueFileRefused,
  readQueueFile,
  saveCorrupt,
  writeAllSync,
} from "../../../lib/queue/file.ts";
import { createQueueTree, queueFilePath, type QueueLayout } from "../../../lib/queue/layout.ts";
import { isLongQueueId, isShortQueueId, parseQueueId } from "../../../lib/queue/id.ts";
import { encodeRecord, joinRecords } from "../../../lib/queue/record.ts";

function tempQueue(hash: string[] = [], depth = 1): QueueLayout {
  const layout = {
    queueDirectory: Deno.makeTempDirSync() + "/queue",
    hashQueueNames: hash,
    hashQueueDepth: depth,
  };
  createQueueTree(layout);
  return layout;
}

const message = joinRecords([
  encodeRecord("T", "1 2"),
  encodeRecord("S", "a@b"),
  encodeRecord("M"),
  encodeRecord("N", "x"),
  encodeRecord("X"),
  encodeRecord("E"),
]);

Deno.test("createQueueTree() makes every queue folder with Posthorn's modes", () => {
  const layout = tempQueue();
  const mode = (name: string) => Deno.statSync(`${layout.queueDirectory}/${name}`).mode! & 0o7777;
  assertEquals(mode("incoming"), 0o700);
  assertEquals(mode("maildrop"), 0o3733);
  assertEquals(mode("public"), 0o711);
  assertEquals(mode("pid"), 0o755);
  for (
    const name of [
      "active",
      "bounce",
      "corrupt",
      "defer",
      "deferred",
      "flush",
      "hold",
      "saved",
      "trace",
      "private",
    ]
  ) {
    assertEquals(mode(name), 0o700, name);
  }
});

Deno.test("createQueueFile() names the file after its inode and creation time", () => {
  const layout = tempQueue();
  const qf = createQueueFile(layout, "incoming");
  const inode = Deno.statSync(qf.path).ino!;
  assert(isShortQueueId(qf.id), qf.id);
  assertEquals(parseQueueId(qf.id)!.inode, inode);
  assertEquals(Deno.statSync(qf.path).mode! & 0o777, 0o600);
  // The temporary name is gone; only the id name is left.
  assertEquals([...Deno.readDirSync(`${layout.queueDirectory}/incoming`)].map((e) => e.name), [
    qf.id,
  ]);
  qf.file.close();
  const long = createQueueFile(layout, "incoming", { longIds: true });
  assert(isLongQueueId(long.id), long.id);
  long.file.close();
});

Deno.test("createQueueFile() makes missing hashed subdirectories", () => {
  const layout = tempQueue(["deferred"], 2);
  const qf = createQueueFile(layout, "deferred");
  qf.file.close();
  const sub = qf.id.slice(0, 1) + "/" + qf.id.slice(1, 2);
  assertEquals(qf.path, `${layout.queueDirectory}/deferred/${sub}/${qf.id}`);
  assertEquals(queueFilePath(layout, "deferred", qf.id), qf.path);
});

Deno.test("a queue file is complete only after commit: readers refuse it before", () => {
  const layout = tempQueue();
  const qf = createQueueFile(layout, "incoming");
  writeAllSync(qf.file, message);
  assertThrows(() => readQueueFile(qf.path), QueueFileRefused, "incomplete");
  commitQueueFile(qf);
  assertEquals(Deno.statSync(qf.path).mode! & 0o777, 0o700);
  assertEquals(readQueueFile(qf.path), message);
});

Deno.test("readQueueFile() refuses a file without an end record, even with the execute bit", () => {
  const layout = tempQueue();
  const path = `${layout.queueDirectory}/incoming/ABCDE123`;
  Deno.writeFileSync(path, message.subarray(0, message.length - 2), { mode: 0o700 });
  Deno.chmodSync(path, 0o700);
  const err = assertThrows(() => readQueueFile(path), QueueFileRefused, "no end record");
  assertEquals(err.reason, "corrupt");
  assertThrows(
    () => checkComplete(message.subarray(0, 4), "x"),
    QueueFileRefused,
    "unexpected EOF",
  );
});

Deno.test("saveCorrupt() moves a file to the corrupt queue with a warning", () => {
  const layout = tempQueue();
  const path = `${layout.queueDirectory}/active/ABCDE123`;
  Deno.writeFileSync(path, new Uint8Array([1, 2, 3]));
  const lines: string[] = [];
  captureLog((line) => lines.push(line));
  try {
    const to = saveCorrupt(layout, "active", "ABCDE123");
    assertEquals(to, `${layout.queueDirectory}/corrupt/ABCDE123`);
    assert(Deno.statSync(to).isFile);
  } finally {
    captureLog(undefined);
  }
  assertEquals(lines, ['warning: saving corrupt file "ABCDE123" from queue "active"']);
});

Deno.test("queueFilePath() hashes by the microseconds, long ids too, and never hashes maildrop", () => {
  const layout = {
    queueDirectory: "/q",
    hashQueueNames: ["deferred", "maildrop"],
    hashQueueDepth: 2,
  };
  assertEquals(queueFilePath(layout, "deferred", "81E4220C035"), "/q/deferred/8/1/81E4220C035");
  // Made by the reference with hash_queue_depth = 2: maildrop/5/C/4jYmr72gZSzJ9Gn (before it refused hashing maildrop).
  assertEquals(
    queueFilePath(layout, "deferred", "4jYmr72gZSzJ9Gn"),
    "/q/deferred/5/C/4jYmr72gZSzJ9Gn",
  );
  assertEquals(queueFilePath(layout, "maildrop", "81E4220C035"), "/q/maildrop/81E4220C035");
  assertEquals(queueFilePath(layout, "hold", "81E4220C035"), "/q/hold/81E4220C035");
});
