import { assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { DictError, openMap } from "../../maps/mod.ts";
import { buildCdb, cdbHash } from "../../maps/cdb.ts";
import { referenceInstalled, tempDir, withLog } from "./helpers.ts";

async function build(spec: string, entries: [string, string][], flags = {}) {
  const d = openMap(spec, { create: true, write: true, flags });
  for (const [k, v] of entries) await d.update(k, v);
  await d.close();
}

Deno.test("cdbHash() is djb's hash", () => {
  assertEquals(cdbHash(new TextEncoder().encode("")), 5381);
  assertEquals(cdbHash(new TextEncoder().encode("a")), ((5381 * 33) ^ 97) >>> 0);
});

Deno.test("buildCdb() of an empty table is the bare 2048-byte header", () => {
  const data = buildCdb([]);
  assertEquals(data.length, 2048);
  assertEquals(new DataView(data.buffer).getUint32(0, true), 2048);
});

Deno.test("cdb table finds every key of a large table and misses absent ones", async () => {
  const { dir, cleanup } = tempDir();
  const entries: [string, string][] = [];
  for (let i = 0; i < 5000; i++) entries.push([`key${i}@example.com`, `value ${i}`]);
  await build(`cdb:${dir}/t`, entries);
  const d = openMap(`cdb:${dir}/t`);
  for (let i = 0; i < 5000; i += 7) {
    assertEquals(await d.lookup(`KEY${i}@example.com`), `value ${i}`);
  }
  assertEquals(await d.lookup("key5000@example.com"), undefined);
  cleanup();
});

Deno.test("cdb table lists entries in input order and warns about duplicates", async () => {
  const { dir, cleanup } = tempDir();
  const { log } = await withLog(() => build(`cdb:${dir}/t`, [["b", "1"], ["a", "2"], ["B", "3"]]));
  assertEquals(log, [`warning: ${dir}/t: duplicate entry: "b"`]);
  const seq = [];
  for await (const e of openMap(`cdb:${dir}/t`).sequence()) seq.push(e);
  assertEquals(seq, [["b", "1"], ["a", "2"]]);
  cleanup();
});

Deno.test("cdb table holds UTF-8 keys and values", async () => {
  const { dir, cleanup } = tempDir();
  await build(`cdb:${dir}/t`, [["café", "crème ☕"]]);
  assertEquals(await openMap(`cdb:${dir}/t`, { flags: { utf8: true } }).lookup("CAFÉ"), "crème ☕");
  // Without SMTPUTF8 only ASCII letters fold, as in Postfix.
  assertEquals(await openMap(`cdb:${dir}/t`).lookup("CAFé"), "crème ☕");
  assertEquals(await openMap(`cdb:${dir}/t`).lookup("CAFÉ"), undefined);
  cleanup();
});

Deno.test("cdb table cannot be updated in place", async () => {
  const { dir, cleanup } = tempDir();
  await build(`cdb:${dir}/t`, [["a", "1"]]);
  assertThrows(() => openMap(`cdb:${dir}/t`, { write: true }), DictError, "update operation");
  await assertRejects(() => openMap(`cdb:${dir}/t`).update("b", "2"), DictError);
  cleanup();
});

Deno.test("opening a missing cdb table fails naming the file", () => {
  assertThrows(() => openMap("cdb:/nonexistent/t"), DictError, "open database /nonexistent/t.cdb");
});

Deno.test("cdb file written by the reference postmap is read by Posthorn", {
  ignore: !referenceInstalled(),
}, async () => {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/main.cf`, "");
  const lines = ["alpha one", "beta two words", "Gamma three"];
  for (let i = 0; i < 300; i++) lines.push(`user${i}@example.org result-${i}`);
  Deno.writeTextFileSync(`${dir}/src`, lines.join("\n") + "\n");
  const out = await new Deno.Command("/usr/sbin/postmap", {
    args: ["-c", dir, `cdb:${dir}/src`],
  }).output();
  assertEquals(out.code, 0);
  const d = openMap(`cdb:${dir}/src`);
  assertEquals(await d.lookup("alpha"), "one");
  assertEquals(await d.lookup("beta"), "two words");
  assertEquals(await d.lookup("gamma"), "three");
  assertEquals(await d.lookup("user299@example.org"), "result-299");
  assertEquals(await d.lookup("missing"), undefined);
  cleanup();
});

Deno.test("cdb file written by Posthorn is read by the reference postmap", {
  ignore: !referenceInstalled(),
}, async () => {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/main.cf`, "");
  const entries: [string, string][] = [["alpha", "one"], ["beta", "two words"]];
  for (let i = 0; i < 300; i++) entries.push([`user${i}@example.org`, `result-${i}`]);
  await build(`cdb:${dir}/t`, entries);
  const query = async (key: string) => {
    const out = await new Deno.Command("/usr/sbin/postmap", {
      args: ["-c", dir, "-q", key, `cdb:${dir}/t`],
    }).output();
    return [out.code, new TextDecoder().decode(out.stdout)];
  };
  assertEquals(await query("beta"), [0, "two words\n"]);
  assertEquals(await query("user123@example.org"), [0, "result-123\n"]);
  assertEquals((await query("nope"))[0], 1);
  cleanup();
});

Deno.test("a closed cdb table releases its file and the file can be replaced while open", async () => {
  const { dir, cleanup } = tempDir();
  await build(`cdb:${dir}/t`, [["a", "old"]]);
  const reader = openMap(`cdb:${dir}/t`);
  await build(`cdb:${dir}/t`, [["a", "new"]]);
  assertEquals(await reader.lookup("a"), "old");
  await reader.close();
  assertEquals(await openMap(`cdb:${dir}/t`).lookup("a"), "new");
  cleanup();
});

Deno.test("cdb -r style replacement and deletion while building keep one entry per key", async () => {
  const { dir, cleanup } = tempDir();
  const d = openMap(`cdb:${dir}/t`, { create: true, write: true, flags: { dupReplace: true } });
  await d.update("a", "1");
  await d.update("b", "2");
  await d.update("a", "3");
  await d.delete("b");
  await d.update("c", "4");
  await d.close();
  const seq = [];
  for await (const e of openMap(`cdb:${dir}/t`).sequence()) seq.push(e);
  assertEquals(seq, [["a", "3"], ["c", "4"]]);
  cleanup();
});
