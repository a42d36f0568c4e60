import { assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { DatabaseSync } from "node:sqlite";
import { DictError, openMap } from "../../maps/mod.ts";
import { tempDir, withLog } from "./helpers.ts";

function setup(params: string) {
  const { dir, cleanup } = tempDir();
  const db = new DatabaseSync(`${dir}/db.sqlite`);
  db.exec(`CREATE TABLE aliases (mailbox TEXT, dest TEXT);
    INSERT INTO aliases VALUES ('joe@example.com', 'joseph@example.org');
    INSERT INTO aliases VALUES ('joe', 'local-joe');
    INSERT INTO aliases VALUES ('o''brien@example.com', 'quoted');
    INSERT INTO aliases VALUES ('list@example.com', 'a@x.org');
    INSERT INTO aliases VALUES ('list@example.com', 'b@y.org');
    INSERT INTO aliases VALUES ('empty@example.com', '');
    CREATE TABLE parts (p TEXT, v TEXT);
    INSERT INTO parts VALUES ('joe', 'user-part');
    INSERT INTO parts VALUES ('example.com', 'domain-part');
    INSERT INTO parts VALUES ('com', 'tld');
    INSERT INTO parts VALUES ('mail', 'third');`);
  db.close();
  Deno.writeTextFileSync(`${dir}/t.cf`, `dbpath = ${dir}/db.sqlite\n${params}\n`);
  return { spec: `sqlite:${dir}/t.cf`, dir, cleanup };
}

Deno.test("sqlite table expands %s with SQL quoting", async () => {
  const t = setup("query = SELECT dest FROM aliases WHERE mailbox = '%s'");
  const d = openMap(t.spec);
  assertEquals(await d.lookup("joe@example.com"), "joseph@example.org");
  assertEquals(await d.lookup("JOE@Example.com"), "joseph@example.org");
  assertEquals(await d.lookup("o'brien@example.com"), "quoted");
  assertEquals(await d.lookup("nobody@example.com"), undefined);
  t.cleanup();
});

Deno.test("sqlite table joins several rows with commas and skips empty results", async () => {
  const t = setup("query = SELECT dest FROM aliases WHERE mailbox = '%s'");
  const d = openMap(t.spec);
  assertEquals(await d.lookup("list@example.com"), "a@x.org,b@y.org");
  assertEquals(await d.lookup("empty@example.com"), undefined);
  t.cleanup();
});

Deno.test("sqlite table %u and %d take the local part and domain, or suppress the query", async () => {
  const u = setup("query = SELECT v FROM parts WHERE p = '%u'");
  assertEquals(await openMap(u.spec).lookup("joe@anywhere.net"), "user-part");
  assertEquals(await openMap(u.spec).lookup("joe"), "user-part");
  assertEquals(await openMap(u.spec).lookup("@example.com"), undefined);
  u.cleanup();
  const d = setup("query = SELECT v FROM parts WHERE p = '%d'");
  assertEquals(await openMap(d.spec).lookup("x@example.com"), "domain-part");
  assertEquals(await openMap(d.spec).lookup("example.com"), undefined);
  d.cleanup();
});

Deno.test("sqlite table %S %U %D behave as lower case in a query", async () => {
  const t = setup("query = SELECT v FROM parts WHERE p = '%U' OR p = '%D' ORDER BY v DESC LIMIT 1");
  assertEquals(await openMap(t.spec).lookup("joe@example.com"), "user-part");
  const s = setup("query = SELECT dest FROM aliases WHERE mailbox = '%S'");
  assertEquals(await openMap(s.spec).lookup("joe"), "local-joe");
  t.cleanup();
  s.cleanup();
});

Deno.test("sqlite table %1-%9 take domain labels from the right", async () => {
  const t = setup("query = SELECT v FROM parts WHERE p = '%1'");
  assertEquals(await openMap(t.spec).lookup("joe@mail.example.com"), "tld");
  t.cleanup();
  const t3 = setup("query = SELECT v FROM parts WHERE p = '%3'");
  assertEquals(await openMap(t3.spec).lookup("joe@mail.example.com"), "third");
  assertEquals(await openMap(t3.spec).lookup("joe@example.com"), undefined);
  assertEquals(await openMap(t3.spec).lookup("joe"), undefined);
  t3.cleanup();
});

Deno.test("sqlite table result_format wraps each value and %% is a percent sign", async () => {
  const t = setup(
    "query = SELECT dest FROM aliases WHERE mailbox = '%s'\nresult_format = smtp:[%d] %u %% %U",
  );
  assertEquals(
    await openMap(t.spec).lookup("list@example.com"),
    "smtp:[x.org] a % list,smtp:[y.org] b % list",
  );
  t.cleanup();
});

Deno.test("sqlite table domain limits lookups to listed domains with a local part", async () => {
  const t = setup(
    "query = SELECT dest FROM aliases WHERE mailbox = '%s'\ndomain = example.com, other.org",
  );
  const d = openMap(t.spec);
  assertEquals(await d.lookup("joe@example.com"), "joseph@example.org");
  assertEquals(await d.lookup("joe"), undefined);
  assertEquals(await d.lookup("joe@elsewhere.com"), undefined);
  t.cleanup();
});

Deno.test("sqlite table expansion_limit turns too many results into a temporary error", async () => {
  const t = setup("query = SELECT dest FROM aliases WHERE mailbox = '%s'\nexpansion_limit = 1");
  const d = openMap(t.spec);
  assertEquals(await d.lookup("joe@example.com"), "joseph@example.org");
  const { result: e, log } = await withLog(() =>
    assertRejects(() => d.lookup("list@example.com"), DictError, "Expansion limit exceeded")
  );
  assertEquals(log, [
    `warning: dict_sqlite_lookup: ${t.dir}/t.cf: Expansion limit exceeded for key 'list@example.com'`,
  ]);
  assertEquals(e.kind, "retry");
  t.cleanup();
});

Deno.test("sqlite table builds a query from the legacy parameters", async () => {
  const t = setup("select_field = dest\ntable = aliases\nwhere_field = mailbox");
  assertEquals(await openMap(t.spec).lookup("joe"), "local-joe");
  t.cleanup();
});

Deno.test("sqlite table reads its parameters from main.cf for a name without a path", async () => {
  const t = setup("");
  const config = {
    get: (n: string) =>
      ({
        sq_dbpath: `${t.dir}/db.sqlite`,
        sq_query: "SELECT dest FROM aliases WHERE mailbox = '%s'",
      })[n] ?? "",
    isSet: (n: string) => n === "sq_dbpath" || n === "sq_query",
  };
  assertEquals(await openMap("sqlite:sq", { config }).lookup("joe"), "local-joe");
  t.cleanup();
});

Deno.test("sqlite table errors: missing file, missing dbpath, bad SQL", async () => {
  assertThrows(() => openMap("sqlite:/nonexistent/x.cf"), DictError, "open /nonexistent/x.cf");
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/nodb.cf`, "query = SELECT 1\n");
  assertThrows(() => openMap(`sqlite:${dir}/nodb.cf`), DictError, "missing dbpath");
  Deno.writeTextFileSync(`${dir}/gone.cf`, `dbpath = ${dir}/none.sqlite\nquery = SELECT 1\n`);
  await assertRejects(() => openMap(`sqlite:${dir}/gone.cf`).lookup("x"), DictError, "none.sqlite");
  cleanup();
  const t = setup("query = SELECT nosuchcolumn FROM aliases WHERE mailbox = '%s'");
  await assertRejects(() => openMap(t.spec).lookup("x"), DictError, "query failed");
  t.cleanup();
});

Deno.test("sqlite table domain list takes files and type:table entries", async () => {
  const t = setup("");
  Deno.writeTextFileSync(`${t.dir}/domains`, "# local\nexample.com\n");
  Deno.writeTextFileSync(
    `${t.dir}/t.cf`,
    `dbpath = ${t.dir}/db.sqlite\nquery = SELECT v FROM parts WHERE p = '%d'\n` +
      `domain = ${t.dir}/domains, inline:{mail.example.com=yes}\n`,
  );
  const d = openMap(t.spec);
  assertEquals(await d.lookup("x@example.com"), "domain-part");
  assertEquals(await d.lookup("x@mail.example.com"), undefined); // in the list, no row
  assertEquals(await d.lookup("x@com"), undefined); // not in the list
  t.cleanup();
});
