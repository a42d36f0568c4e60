import { assertEquals, assertThrows } from "../../assert.ts";
import {
  MaildropWriter,
  MessageTooLarge,
  readSubmission,
  SubmissionError,
} from "../../../lib/queue/maildrop.ts";
import { QueueFileRefused } from "../../../lib/queue/file.ts";
import { createQueueTree, type QueueLayout } from "../../../lib/queue/layout.ts";
import { encodeRecord, joinRecords, recordText } from "../../../lib/queue/record.ts";

function tempQueue(): QueueLayout {
  const layout = {
    queueDirectory: Deno.makeTempDirSync() + "/q",
    hashQueueNames: [],
    hashQueueDepth: 1,
  };
  createQueueTree(layout);
  return layout;
}

function submit(layout: QueueLayout): MaildropWriter {
  const w = new MaildropWriter(layout);
  w.add("A", "rewrite_context=local");
  w.add("S", "a@b");
  w.add("R", "c@d");
  w.add("M");
  w.add("N", "text");
  w.add("X");
  w.add("E");
  return w;
}

Deno.test("MaildropWriter commits a file readSubmission() accepts, naming the submitter", () => {
  const layout = tempQueue();
  const w = submit(layout);
  w.commit();
  const got = readSubmission(w.path);
  assertEquals(got.uid, Deno.uid());
  assertEquals(got.records.map((r) => r.type).join(""), "ASRMNXE");
  assertEquals(/^\d+ \d+$/.test(got.arrival), true);
});

Deno.test("MaildropWriter refuses records out of place and removes the file", () => {
  const layout = tempQueue();
  for (
    const [before, bad] of [[[], "T"], [[], "C"], [["M"], "R"], [["M", "X"], "N"], [
      ["M", "X", "E"],
      "R",
    ]] as const
  ) {
    const w = new MaildropWriter(layout);
    for (const t of before) w.add(t);
    assertThrows(() => w.add(bad, "x"), SubmissionError, "unexpected record type");
    w.abandon();
  }
  assertEquals([...Deno.readDirSync(`${layout.queueDirectory}/maildrop`)], []);
});

Deno.test("MaildropWriter stops at message_size_limit with nothing left behind", () => {
  const layout = tempQueue();
  const w = new MaildropWriter(layout, { sizeLimit: 1000 });
  w.add("S", "a@b");
  w.add("M");
  assertThrows(() => {
    for (let i = 0; i < 100; i++) w.add("N", "x".repeat(50));
  }, MessageTooLarge);
  assertEquals([...Deno.readDirSync(`${layout.queueDirectory}/maildrop`)], []);
});

Deno.test("readSubmission() refuses incomplete files, links and files a user wrote by hand", () => {
  const layout = tempQueue();
  const w = submit(layout);
  assertThrows(() => readSubmission(w.path), QueueFileRefused, "incomplete");
  w.commit();
  const link = `${layout.queueDirectory}/maildrop/LINK`;
  Deno.symlinkSync(w.path, link);
  assertThrows(() => readSubmission(link), QueueFileRefused, "regular file");
  const forged = `${layout.queueDirectory}/maildrop/ABCDEF12`;
  const cases: [Uint8Array, string][] = [
    [
      joinRecords([encodeRecord("T", "1 2"), encodeRecord("C", "x"), encodeRecord("E")]),
      "unexpected record type: 67",
    ],
    [
      joinRecords([
        encodeRecord("T", "1 2"),
        encodeRecord("A", "log_client_address=1.2.3.4"),
        encodeRecord("M"),
        encodeRecord("X"),
        encodeRecord("E"),
      ]),
      "attribute not allowed",
    ],
    [
      joinRecords([encodeRecord("T", "1 2"), encodeRecord("M"), encodeRecord("N", "x")]),
      "no end record",
    ],
    [joinRecords([encodeRecord("S", "a")]), "no arrival time"],
  ];
  for (const [data, text] of cases) {
    Deno.writeFileSync(forged, data, { mode: 0o700 });
    Deno.chmodSync(forged, 0o700);
    const err = assertThrows(() => readSubmission(forged), QueueFileRefused, text);
    assertEquals(err.reason, "corrupt");
  }
  assertEquals(recordText(readSubmission(w.path).records[1]), "a@b");
});
