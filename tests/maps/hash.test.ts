import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { DictError, openMap } from "../../maps/mod.ts";
import { tempDir, withLog } from "./helpers.ts";

async function build(spec: string, entries: [string, string][], flags = {}) {
  const d = openMap(spec, { create: true, write: true, flags });
  for (const [k, v] of entries) await d.update(k, v);
  await d.close();
}

Deno.test("hash table finds a key case-insensitively and misses an absent one", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["Foo", "bar"], ["k", "v w"]]);
  const d = openMap(`hash:${dir}/t`);
  assertEquals(await d.lookup("FOO"), "bar");
  assertEquals(await d.lookup("k"), "v w");
  assertEquals(await d.lookup("nope"), undefined);
  await d.close();
  assert(Deno.statSync(`${dir}/t.db`).isFile);
  cleanup();
});

Deno.test("hash table without case folding keeps key case", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["Foo", "bar"]], { foldFix: false });
  const d = openMap(`hash:${dir}/t`, { flags: { foldFix: false } });
  assertEquals(await d.lookup("Foo"), "bar");
  assertEquals(await d.lookup("foo"), undefined);
  cleanup();
});

Deno.test("hash table warns about a duplicate and keeps the first value", async () => {
  const { dir, cleanup } = tempDir();
  const { log } = await withLog(() => build(`hash:${dir}/t`, [["a", "1"], ["A", "2"]]));
  assertEquals(log, [`warning: ${dir}/t.db: duplicate entry: "a"`]);
  assertEquals(await openMap(`hash:${dir}/t`).lookup("a"), "1");
  cleanup();
});

Deno.test("hash table replaces a duplicate with dupReplace and ignores it with dupIgnore", async () => {
  const { dir, cleanup } = tempDir();
  const r = await withLog(() =>
    build(`hash:${dir}/r`, [["a", "1"], ["a", "2"]], { dupReplace: true, dupWarn: false })
  );
  assertEquals(r.log, []);
  assertEquals(await openMap(`hash:${dir}/r`).lookup("a"), "2");
  const w = await withLog(() =>
    build(`hash:${dir}/w`, [["a", "1"], ["a", "2"]], { dupIgnore: true, dupWarn: false })
  );
  assertEquals(w.log, []);
  assertEquals(await openMap(`hash:${dir}/w`).lookup("a"), "1");
  cleanup();
});

Deno.test("hash table with null terminators is found with and without the null flags", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["a", "1"]], { try0Null: false, try1Null: true });
  assertEquals(await openMap(`hash:${dir}/t`).lookup("a"), "1");
  assertEquals(
    await openMap(`hash:${dir}/t`, { flags: { try0Null: true, try1Null: false } }).lookup("a"),
    undefined,
  );
  const seq = [];
  for await (const e of openMap(`hash:${dir}/t`).sequence()) seq.push(e);
  assertEquals(seq, [["a", "1"]]);
  cleanup();
});

Deno.test("hash table takes updates and deletions in place", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["a", "1"], ["b", "2"]]);
  const d = openMap(`hash:${dir}/t`, { write: true });
  await d.update("c", "3");
  assertEquals(await d.delete("a"), true);
  assertEquals(await d.delete("zz"), false);
  await d.close();
  const seq = [];
  for await (const e of openMap(`hash:${dir}/t`).sequence()) seq.push(e);
  assertEquals(seq, [["b", "2"], ["c", "3"]]);
  cleanup();
});

Deno.test("btree and lmdb tables are the same SQLite-backed kind as hash", async () => {
  const { dir, cleanup } = tempDir();
  await build(`btree:${dir}/b`, [["x", "1"]]);
  await build(`lmdb:${dir}/l`, [["y", "2"]]);
  assertEquals(await openMap(`btree:${dir}/b`).lookup("x"), "1");
  assertEquals(await openMap(`lmdb:${dir}/l`).lookup("y"), "2");
  assertEquals(await openMap(`hash:${dir}/b`).lookup("x"), "1");
  cleanup();
});

Deno.test("opening a missing hash table fails naming the file", () => {
  const e = assertThrows(() => openMap("hash:/nonexistent/t"), DictError);
  assertEquals(e.message, "open database /nonexistent/t.db: No such file or directory");
});

Deno.test("a reader keeps seeing the old table while a rebuild is in progress", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["a", "old"]]);
  const reader = openMap(`hash:${dir}/t`);
  const writer = openMap(`hash:${dir}/t`, { create: true, write: true });
  await writer.update("a", "new");
  assertEquals(await reader.lookup("a"), "old");
  assertEquals(await openMap(`hash:${dir}/t`).lookup("a"), "old");
  await writer.close();
  assertEquals(await reader.lookup("a"), "old");
  assertEquals(await openMap(`hash:${dir}/t`).lookup("a"), "new");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["t.db"]);
  cleanup();
});

Deno.test("an aborted rebuild leaves the old table and no temporary file", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["a", "old"]]);
  const writer = openMap(`hash:${dir}/t`, { create: true, write: true });
  await writer.update("a", "new");
  writer.abort!();
  assertEquals(await openMap(`hash:${dir}/t`).lookup("a"), "old");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["t.db"]);
  cleanup();
});

Deno.test("two concurrent incremental writers both land all their entries", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["seed", "0"]]);
  const script = `
    import { openMap } from "${new URL("../../maps/mod.ts", import.meta.url).href}";
    const [spec, prefix] = Deno.args;
    for (let batch = 0; batch < 20; batch++) {
      const d = openMap(spec, { write: true });
      for (let i = 0; i < 50; i++) await d.update(prefix + (batch * 50 + i), "v");
      await d.close();
    }`;
  const run = (prefix: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", script, `hash:${dir}/t`, prefix],
      stderr: "piped",
    }).output();
  const [a, b] = await Promise.all([run("a"), run("b")]);
  assertEquals(
    [a.code, b.code],
    [0, 0],
    new TextDecoder().decode(a.stderr) + new TextDecoder().decode(b.stderr),
  );
  let n = 0;
  for await (const _ of openMap(`hash:${dir}/t`).sequence()) n++;
  assertEquals(n, 2001);
  cleanup();
});

Deno.test("a read-only hash table refuses updates", async () => {
  const { dir, cleanup } = tempDir();
  await build(`hash:${dir}/t`, [["a", "1"]]);
  await assertRejects(() => openMap(`hash:${dir}/t`).update("b", "2"));
  cleanup();
});

Deno.test("hash lookupMany() answers a batch in key order, with and without null terminators", async () => {
  const { dir, cleanup } = tempDir();
  const entries: [string, string][] = [];
  for (let i = 0; i < 1200; i++) entries.push([`k${i}`, `v${i}`]);
  await build(`hash:${dir}/t`, entries);
  await build(`hash:${dir}/n`, entries, { try0Null: false, try1Null: true });
  for (const name of ["t", "n"]) {
    const d = openMap(`hash:${dir}/${name}`);
    const keys = ["K5", "missing", "k1199", ...Array.from({ length: 1000 }, (_, i) => `k${i}`)];
    const got = await d.lookupMany!(keys);
    assertEquals(got.slice(0, 3), ["v5", undefined, "v1199"]);
    assertEquals(got.slice(3), Array.from({ length: 1000 }, (_, i) => `v${i}`));
  }
  cleanup();
});

Deno.test("a batched build warns about each duplicate, across and within batches, keeping the first", async () => {
  const { dir, cleanup } = tempDir();
  const entries: [string, string][] = [];
  for (let i = 0; i < 1000; i++) entries.push([`k${i}`, `first${i}`]);
  entries.splice(150, 0, ["k10", "dup-in-batch"]);
  entries.push(["K999", "dup-across"], ["k0", "dup-first"]);
  const { log } = await withLog(() => build(`hash:${dir}/t`, entries));
  assertEquals(log, [
    `warning: ${dir}/t.db: duplicate entry: "k10"`,
    `warning: ${dir}/t.db: duplicate entry: "k999"`,
    `warning: ${dir}/t.db: duplicate entry: "k0"`,
  ]);
  const d = openMap(`hash:${dir}/t`);
  assertEquals([await d.lookup("k10"), await d.lookup("k999"), await d.lookup("k0")], [
    "first10",
    "first999",
    "first0",
  ]);
  let n = 0;
  for await (const _ of d.sequence()) n++;
  assertEquals(n, 1000);
  const r = await withLog(() =>
    build(`hash:${dir}/r`, entries, { dupReplace: true, dupWarn: false })
  );
  assertEquals(r.log, []);
  assertEquals(await openMap(`hash:${dir}/r`).lookup("k0"), "dup-first");
  cleanup();
});

Deno.test("a .db file that is not Posthorn's SQLite table fails with advice to rebuild it", () => {
  const { dir, cleanup } = tempDir();
  Deno.writeFileSync(`${dir}/t.db`, new Uint8Array(4096).fill(0x61));
  assertThrows(() => openMap(`hash:${dir}/t`), DictError, "rebuild it with postmap");
  cleanup();
});
