import { assert, assertEquals } from "../../assert.ts";
import {
  isLongQueueId,
  isQueueId,
  isShortQueueId,
  longQueueId,
  parseQueueId,
  queueIdHashKey,
  shortQueueId,
} from "../../../lib/queue/id.ts";

Deno.test("shortQueueId() is 5 hex digits of microseconds then the inode in hex", () => {
  assertEquals(shortQueueId(0x5397d, 0x20c026), "5397D20C026");
  assertEquals(shortQueueId(5, 0xabc), "00005ABC");
});

Deno.test("longQueueId() encodes seconds, microseconds and inode as the reference does", () => {
  // 4jYmr72gZSzJ9Gn was made by the reference: usec 377440 (hashes as 5C260).
  const parts = parseQueueId("4jYmr72gZSzJ9Gn")!;
  assertEquals(parts.long, true);
  assertEquals(parts.usec, 377440);
  assertEquals(longQueueId(parts.seconds!, parts.usec, parts.inode), "4jYmr72gZSzJ9Gn");
  assertEquals(queueIdHashKey("4jYmr72gZSzJ9Gn"), "5C260");
});

Deno.test("parseQueueId() takes short ids apart and refuses malformed ones", () => {
  assertEquals(parseQueueId("5397D20C026"), { long: false, usec: 0x5397d, inode: 0x20c026 });
  assertEquals(parseQueueId("F4240ABC"), null); // 1000000 microseconds is no time of day
  for (const bad of ["", "abc", "5397d20c026", "../etc", "4jYmr72gZSzJ9GnA!", "4jYmpD3aYgRzJ9Dc"]) {
    assert(!isQueueId(bad), bad);
  }
});

Deno.test("isShortQueueId() and isLongQueueId() tell the two forms apart", () => {
  assert(isShortQueueId("8045F2AB23"));
  assert(!isLongQueueId("8045F2AB23"));
  assert(isLongQueueId("4jYmpD3YgRzJ9Dc"));
  assert(!isShortQueueId("4jYmpD3YgRzJ9Dc"));
  for (let i = 0; i < 200; i++) {
    const sec = 1_700_000_000 + i * 7919;
    const usec = (i * 104729) % 1_000_000;
    const id = longQueueId(sec, usec, 1000 + i * 31);
    assert(isLongQueueId(id), id);
    assertEquals(parseQueueId(id), { long: true, seconds: sec, usec, inode: 1000 + i * 31 });
    assertEquals(parseQueueId(shortQueueId(usec, i + 1))!.usec, usec);
  }
});
