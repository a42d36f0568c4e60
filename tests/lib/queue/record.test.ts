import { assertEquals, assertThrows } from "../../assert.ts";
import {
  decodeRecordAt,
  decodeRecords,
  encodeLength,
  encodeRecord,
  joinRecords,
  pointerRecord,
  RecordError,
  RecordReader,
  RecordStreamDecoder,
  recordText,
} from "../../../lib/queue/record.ts";

const golden = new URL("../../golden/queue/", import.meta.url);

Deno.test("encodeLength() writes 7-bit groups, least significant first", () => {
  assertEquals([...encodeLength(0)], [0]);
  assertEquals([...encodeLength(127)], [127]);
  assertEquals([...encodeLength(128)], [0x80, 1]);
  assertEquals([...encodeLength(5000)], [0x88, 0x27]);
  assertEquals([...encodeLength(2 ** 21)], [0x80, 0x80, 0x80, 1]);
});

Deno.test("encodeRecord() and decodeRecordAt() round-trip empty, long and 8-bit records", () => {
  const eight = Uint8Array.from({ length: 256 }, (_, i) => i); // every byte, NUL included
  const long = new Uint8Array(300000).fill(0x78);
  const cases: [string, Uint8Array][] = [["E", new Uint8Array()], ["N", eight], ["L", long]];
  const buf = joinRecords(cases.map(([t, d]) => encodeRecord(t, d)));
  const back = decodeRecords(buf);
  assertEquals(back.map((r) => r.type), ["E", "N", "L"]);
  back.forEach((r, i) => assertEquals(r.data, cases[i][1]));
  assertEquals(back[1].offset, 2);
});

Deno.test("decodeRecordAt() refuses a record cut off in its length or data", () => {
  const rec = encodeRecord("N", "hello");
  assertThrows(() => decodeRecordAt(rec.subarray(0, 4), 0), RecordError, "unexpected EOF in data");
  const big = encodeRecord("N", new Uint8Array(200));
  assertThrows(() => decodeRecordAt(big.subarray(0, 2), 0), RecordError, "record length");
});

Deno.test("decodeRecords() reads the reference's queue file record for record", () => {
  const data = Deno.readFileSync(new URL("simple.hold", golden));
  const records = decodeRecords(data);
  assertEquals(records[0].type, "C");
  assertEquals(records.map((r) => r.type).join(""), "CTAAFSAORAORMNNNNNNNNNNNXE");
  assertEquals(recordText(records[3]), "rewrite_context=local");
  // Re-encoding every record gives back the file byte for byte.
  assertEquals(joinRecords(records.map((r) => encodeRecord(r.type, r.data))), data);
});

Deno.test("RecordReader follows p records, skips w padding and stops at the end of data", () => {
  const data = Deno.readFileSync(new URL("pointer.crafted", golden));
  const reader = new RecordReader(data);
  const seen: string[] = [];
  for (let r = reader.next(); r; r = reader.next()) {
    seen.push(r.type + recordText(r));
    if (r.type === "E") break;
  }
  assertEquals(seen, ["T1795533859 454152", "M", "None", "Ntwo", "X", "E"]);
  const raw = new RecordReader(data, 0, true);
  const types: string[] = [];
  for (let r = raw.next(); r; r = raw.next()) types.push(r.type);
  assertEquals(types.join(""), "TMNpXENwp");
});

Deno.test("pointerRecord() pads its offset to 15 characters", () => {
  assertEquals(recordText(decodeRecords(pointerRecord(43))[0]), "             43");
});

Deno.test("RecordStreamDecoder assembles records split across chunks", () => {
  const buf = joinRecords([encodeRecord("S", "a@b"), encodeRecord("N", new Uint8Array(1000))]);
  const dec = new RecordStreamDecoder();
  const got = [...dec.push(buf.subarray(0, 3)), ...dec.push(buf.subarray(3, 7))];
  assertEquals(got.length, 1);
  assertEquals(dec.atBoundary, false);
  const rest = dec.push(buf.subarray(7));
  assertEquals(rest.map((r) => [r.type, r.data.length]), [["N", 1000]]);
  assertEquals(dec.atBoundary, true);
  dec.push(encodeRecord("N", "xyz").subarray(0, 3));
  assertThrows(() => dec.end(), RecordError);
});
