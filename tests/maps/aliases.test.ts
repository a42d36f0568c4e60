import { assertEquals, assertRejects } from "../assert.ts";
import {
  canonicalAliasValue,
  DictError,
  openMap,
  parseAliases,
  rebuildAliasDatabases,
} from "../../maps/mod.ts";
import { configFromText } from "../../lib/config/mod.ts";
import { tempDir, withLog } from "./helpers.ts";

Deno.test("canonicalAliasValue() writes address lists as Postfix stores them", () => {
  assertEquals(canonicalAliasValue("  a ,b,   c"), "a, b, c");
  assertEquals(
    canonicalAliasValue('"Joe Smith" <joe@x>, (comment) z'),
    '"Joe Smith" <joe@x>, (comment) z',
  );
  assertEquals(canonicalAliasValue("a@b.c,  \\bob"), "a@b.c, bob");
  assertEquals(
    canonicalAliasValue(' \\\\b, "c d"@e, f\\,g, <h@i>, j (k l)'),
    '"\\\\b", "c d"@e, "f,g", <h@i>, j (k l)',
  );
  assertEquals(canonicalAliasValue(":include:/etc/list"), ":include:/etc/list");
  assertEquals(canonicalAliasValue('"|/bin/cmd arg"'), '"|/bin/cmd arg"');
  assertEquals(canonicalAliasValue("/var/file"), "/var/file");
});

Deno.test("parseAliases() reads names, quoted names, continuation lines and reports bad lines", async () => {
  const text =
    'root: admin, bob\nPostmaster:   root\nlist: a,\n\tb,\n\n  c\n"quoted name": x\nbad line\nq:\nu : b\n';
  const { result, log } = await withLog(() => [...parseAliases(text, "aliases")]);
  assertEquals(result.map((e) => [e.name, e.value, e.lineno]), [
    ["root", "admin, bob", 1],
    ["Postmaster", "root", 2],
    ["list", "a, b, c", 3],
    ["quoted name", "x", 7],
    ["u", "b", 10],
  ]);
  assertEquals(log, [
    "warning: aliases, line 8: need name:value pair",
    "warning: aliases, line 9: need name:value pair",
  ]);
});

Deno.test("rebuildAliasDatabases() builds every file-based alias_database with the @ sentinel", async () => {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/aliases`, "root: admin\npostmaster: root\n");
  Deno.writeTextFileSync(`${dir}/more`, "Joe: joseph\n");
  const config = configFromText(
    dir,
    `alias_database = hash:${dir}/aliases, cdb:${dir}/more, inline:{a=b}\nmyhostname = mx.example.com\n`,
  );
  const built = await rebuildAliasDatabases(config);
  assertEquals(built, [`hash:${dir}/aliases`, `cdb:${dir}/more`]);
  const hash = openMap(`hash:${dir}/aliases`);
  assertEquals(await hash.lookup("Postmaster"), "root");
  assertEquals(await hash.lookup("@"), "@");
  assertEquals(
    await openMap(`hash:${dir}/aliases`, { flags: { foldFix: false } }).lookup("YP_MASTER_NAME"),
    "mx.example.com",
  );
  const cdb = openMap(`cdb:${dir}/more`);
  assertEquals(await cdb.lookup("joe"), "joseph");
  assertEquals(await cdb.lookup("@"), "@");
  assertEquals(await cdb.lookup("YP_MASTER_NAME"), undefined);
  cleanup();
});

Deno.test("rebuildAliasDatabases() uses default_database_type and fails naming a missing file", async () => {
  const { dir, cleanup } = tempDir();
  const config = configFromText(dir, `alias_database = ${dir}/missing\n`);
  await assertRejects(
    () => rebuildAliasDatabases(config),
    DictError,
    `open ${dir}/missing: No such file`,
  );
  cleanup();
});
