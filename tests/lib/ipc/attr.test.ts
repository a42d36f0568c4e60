import { assertEquals, assertThrows } from "../../assert.ts";
import { AttrError, AttrReader, decodeAttrs, encodeAttrs } from "../../../lib/ipc/attr.ts";

Deno.test("encodeAttrs() writes name NUL value NUL pairs and a closing NUL", () => {
  const bytes = encodeAttrs({ request: "rewrite", rule: "local", address: "a@b" });
  assertEquals(new TextDecoder().decode(bytes), "request\0rewrite\0rule\0local\0address\0a@b\0\0");
});

Deno.test("decodeAttrs() reads back what encodeAttrs() wrote", () => {
  const list = decodeAttrs(encodeAttrs({ status: 0, reason: "" }));
  assertEquals([...list], [["status", "0"], ["reason", ""]]);
});

Deno.test("AttrReader yields lists split across chunks and several per chunk", () => {
  const reader = new AttrReader();
  const a = encodeAttrs({ x: "1" });
  const b = encodeAttrs({ y: "2", z: "3" });
  const all = new Uint8Array([...a, ...b]);
  assertEquals(reader.push(all.subarray(0, 3)), []);
  const lists = reader.push(all.subarray(3));
  assertEquals(lists.map((l) => Object.fromEntries(l)), [{ x: "1" }, { y: "2", z: "3" }]);
  assertEquals(reader.pending, 0);
});

Deno.test("encodeAttrs() refuses a NUL inside a value; decodeAttrs() a truncated list", () => {
  assertThrows(() => encodeAttrs({ a: "x\0y" }), AttrError);
  assertThrows(() => decodeAttrs(new TextEncoder().encode("a\0b\0")), AttrError);
});

Deno.test("AttrReader yields the same lists whatever the chunk boundaries", () => {
  const stream = new Uint8Array([
    ...encodeAttrs({ a: "1", bb: "x".repeat(5000) }),
    ...encodeAttrs({ status: "0" }),
    ...encodeAttrs({ c: "", d: "é" }),
  ]);
  const want = [
    new Map([["a", "1"], ["bb", "x".repeat(5000)]]),
    new Map([["status", "0"]]),
    new Map([["c", ""], ["d", "é"]]),
  ];
  for (const size of [1, 2, 3, 7, 4096, stream.length]) {
    const reader = new AttrReader();
    const got = [];
    for (let i = 0; i < stream.length; i += size) {
      got.push(...reader.push(stream.subarray(i, i + size)));
    }
    assertEquals(got, want);
    assertEquals(reader.pending, 0);
  }
});
