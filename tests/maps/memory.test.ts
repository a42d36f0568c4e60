import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { DictError, mapTypeNames, mapTypes, openMap } from "../../maps/mod.ts";
import { tempDir, withLog } from "./helpers.ts";

async function list(spec: string) {
  const out = [];
  for await (const e of openMap(spec).sequence()) out.push(e);
  return out;
}

Deno.test("mapTypeNames() lists every type postconf -m shows, sorted", () => {
  assertEquals(mapTypeNames(), [
    "btree",
    "cdb",
    "cidr",
    "environ",
    "fail",
    "hash",
    "inline",
    "internal",
    "lmdb",
    "pcre",
    "pipemap",
    "proxy",
    "randmap",
    "regexp",
    "sqlite",
    "static",
    "texthash",
    "unionmap",
  ]);
  assert(
    mapTypes().find((t) => t.name === "lmdb")!.description.includes("same SQLite-backed kind"),
  );
});

Deno.test("an unknown table type is refused with Postfix's wording", () => {
  assertThrows(() => openMap("nosuch:x"), DictError, "unsupported dictionary type: nosuch");
  assertThrows(() => openMap("noColon"), DictError, 'expecting "type:name" form');
});

Deno.test("texthash reads a source file into memory with folding and warnings", async () => {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/t`, "Foo bar\nfoo baz\nnovalue\n# c\nlong v1\n  v2\n");
  const { result: d, log } = await withLog(() => openMap(`texthash:${dir}/t`));
  assertEquals(log, [
    `warning: ${dir}/t, line 2: duplicate entry: "foo"`,
    `warning: ${dir}/t, line 3: expected format: key whitespace value -- ignoring this line`,
  ]);
  assertEquals(await d.lookup("FOO"), "bar");
  assertEquals(await d.lookup("long"), "v1  v2");
  assertEquals(await list(`texthash:${dir}/t`), [["foo", "bar"], ["long", "v1  v2"]]);
  cleanup();
});

Deno.test("texthash on a missing file fails naming the file", () => {
  assertThrows(
    () => openMap("texthash:/nonexistent/x"),
    DictError,
    "open /nonexistent/x: No such file",
  );
});

Deno.test("inline table takes name=value items and braced items with spaces", async () => {
  const d = openMap("inline:{ x=1, {y = 2 3}, Z=4 }");
  assertEquals(await d.lookup("x"), "1");
  assertEquals(await d.lookup("y"), "2 3");
  assertEquals(await d.lookup("z"), "4");
  assertEquals(await d.lookup("w"), undefined);
  assertEquals(await list("inline:{ x=1, {y = 2 3} }"), [["x", "1"], ["y", "2 3"]]);
});

Deno.test("inline table syntax errors use Postfix's wording", () => {
  assertThrows(
    () => openMap("inline:{ x=1, a }"),
    DictError,
    `missing '=' after attribute name: "inline:{ x=1, a }"; need "inline:{name=value...}"`,
  );
  assertThrows(() => openMap("inline:{}"), DictError, `bad syntax: "inline:{}"`);
  assertThrows(() => openMap("inline:x=1"), DictError, "bad syntax");
});

Deno.test("static table answers every key and cannot list", async () => {
  assertEquals(await openMap("static:foo").lookup("anything"), "foo");
  assertEquals(await openMap("static:{a b}").lookup("x"), "a b");
  await assertRejects(
    () => list("static:foo"),
    DictError,
    "table static:foo: sequence operation is not supported",
  );
});

Deno.test("fail table fails every lookup with a temporary error", async () => {
  const e = await assertRejects(() => openMap("fail:foo").lookup("x"), DictError);
  assertEquals(e.kind, "retry");
});

Deno.test("environ table looks up environment variables without folding", async () => {
  Deno.env.set("POSTHORN_TEST_VAR", "v1");
  assertEquals(await openMap("environ:x").lookup("POSTHORN_TEST_VAR"), "v1");
  assertEquals(await openMap("environ:x").lookup("posthorn_test_var"), undefined);
});

Deno.test("internal table is shared by every open of the same name", async () => {
  const a = openMap("internal:shared-test", { write: true });
  await a.update("k", "v");
  assertEquals(await openMap("internal:shared-test").lookup("K"), "v");
  assertEquals(await openMap("internal:other-test").lookup("k"), undefined);
});

Deno.test("randmap picks one of its results", async () => {
  const d = openMap("randmap:{a, b, c}");
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add((await d.lookup("x"))!);
  assertEquals([...seen].sort(), ["a", "b", "c"]);
});

Deno.test("unionmap joins every table's result with commas", async () => {
  const d = openMap("unionmap:{inline:{a=1}, inline:{a=2,b=3}}");
  assertEquals(await d.lookup("a"), "1,2");
  assertEquals(await d.lookup("b"), "3");
  assertEquals(await d.lookup("c"), undefined);
});

Deno.test("pipemap feeds each result to the next table", async () => {
  const d = openMap("pipemap:{inline:{a=b}, inline:{b=3}}");
  assertEquals(await d.lookup("a"), "3");
  assertEquals(await d.lookup("b"), undefined);
  assertThrows(() => openMap("pipemap:{inline:{a=b}}"), DictError, "at least two");
});

Deno.test("a table type that cannot be written refuses updates with Postfix's error", async () => {
  await assertRejects(
    () => openMap("inline:{a=1}").update("b", "2"),
    DictError,
    "update operation is not supported",
  );
  await assertRejects(
    () => openMap("static:x").delete("b"),
    DictError,
    "delete operation is not supported",
  );
});
