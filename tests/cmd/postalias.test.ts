import { assert, assertEquals } from "../assert.ts";
import { runProgram } from "../run.ts";

function instance(files: Record<string, string> = {}, mainCf = "myhostname = mx.example.com\n") {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-postalias-" });
  Deno.writeTextFileSync(`${dir}/main.cf`, mainCf);
  for (const [name, text] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, text);
  const run = (args: string[], stdin?: string) =>
    runProgram("postalias", ["-c", dir, ...args], { cwd: dir, stdin });
  return { dir, run, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}

const aliases = [
  "root: admin, bob",
  "Postmaster:   root",
  "# comment",
  "list: a,",
  "  b",
  '"quoted name": x',
  "bad line",
  "owner-list: bob",
  "inc: :include:/etc/list",
  'pipe: "|/bin/cmd arg"',
  "file: /var/file",
  "root: dup",
].join("\n") + "\n";

Deno.test("postalias builds an alias table with the @ sentinel and reports bad lines", async () => {
  const t = instance({ aliases });
  const r = await t.run(["aliases"]);
  assertEquals(r.code, 0);
  assertEquals(
    r.stderr,
    "postalias: warning: aliases, line 7: need name:value pair\n" +
      'postalias: warning: aliases.db: duplicate entry: "root"\n',
  );
  const list = (await t.run(["-s", "aliases"])).stdout.split("\n").filter((l) =>
    l && !l.startsWith("YP_LAST")
  );
  assertEquals(list.sort(), [
    "@:\t@",
    "YP_MASTER_NAME:\tmx.example.com",
    "file:\t/var/file",
    "inc:\t:include:/etc/list",
    "list:\ta, b",
    "owner-list:\tbob",
    'pipe:\t"|/bin/cmd arg"',
    "postmaster:\troot",
    "quoted name:\tx",
    "root:\tadmin, bob",
  ]);
  t.cleanup();
});

Deno.test("postalias -q finds an alias and exits 1 for an unknown one", async () => {
  const t = instance({ aliases });
  await t.run(["aliases"]);
  assertEquals(await t.run(["-q", "POSTMASTER", "aliases"]), {
    code: 0,
    stdout: "root\n",
    stderr: "",
  });
  assertEquals((await t.run(["-q", "quoted name", "aliases"])).stdout, "x\n");
  assertEquals((await t.run(["-q", "@", "aliases"])).stdout, "@\n");
  assertEquals((await t.run(["-q", "nope", "aliases"])).code, 1);
  t.cleanup();
});

Deno.test("postalias -q - prints name:<TAB>value for each alias found", async () => {
  const t = instance({ aliases });
  await t.run(["aliases"]);
  const r = await t.run(["-q", "-", "aliases"], "root\nnope\nlist\n");
  assertEquals(r, { code: 0, stdout: "root:\tadmin, bob\nlist:\ta, b\n", stderr: "" });
  t.cleanup();
});

Deno.test("postalias -i adds aliases from standard input and -d removes them", async () => {
  const t = instance({ aliases: "a: b\n" });
  await t.run(["aliases"]);
  assertEquals((await t.run(["-i", "aliases"], "new: x,   y\n")).code, 0);
  assertEquals((await t.run(["-q", "new", "aliases"])).stdout, "x, y\n");
  assertEquals((await t.run(["-d", "new", "aliases"])).code, 0);
  assertEquals((await t.run(["-d", "new", "aliases"])).code, 1);
  assertEquals((await t.run(["-d", "-", "aliases"], "a\n")).code, 0);
  assertEquals((await t.run(["-q", "a", "aliases"])).code, 1);
  t.cleanup();
});

Deno.test("postalias -r replaces and -w ignores duplicate aliases", async () => {
  const t = instance({ aliases: "a: 1\na: 2\n" });
  assertEquals((await t.run(["-r", "aliases"])).stderr, "");
  assertEquals((await t.run(["-q", "a", "aliases"])).stdout, "2\n");
  assertEquals((await t.run(["-w", "aliases"])).stderr, "");
  assertEquals((await t.run(["-q", "a", "aliases"])).stdout, "1\n");
  t.cleanup();
});

Deno.test("postalias -f keeps the case of alias names", async () => {
  const t = instance({ aliases: "Joe: j\n" });
  await t.run(["-f", "aliases"]);
  assertEquals((await t.run(["-f", "-q", "Joe", "aliases"])).stdout, "j\n");
  assertEquals((await t.run(["-f", "-q", "joe", "aliases"])).code, 1);
  t.cleanup();
});

Deno.test("postalias -N and -n choose null terminators; plain queries find either", async () => {
  const t = instance({ aliases: "a: b\n" });
  await t.run(["-N", "aliases"]);
  assertEquals((await t.run(["-q", "a", "aliases"])).stdout, "b\n");
  assertEquals((await t.run(["-n", "-q", "a", "aliases"])).code, 1);
  await t.run(["-n", "aliases"]);
  assertEquals((await t.run(["-q", "a", "aliases"])).stdout, "b\n");
  t.cleanup();
});

Deno.test("postalias builds cdb tables without YP entries", async () => {
  const t = instance({ aliases: "a: b\n" });
  await t.run(["cdb:aliases"]);
  assertEquals((await t.run(["-s", "cdb:aliases"])).stdout, "a:\tb\n@:\t@\n");
  t.cleanup();
});

Deno.test("postalias -p, -o, -u and -v are accepted; -p gives mode 0644", async () => {
  const t = instance({ aliases: "a: b\n" });
  Deno.chmodSync(`${t.dir}/aliases`, 0o600);
  assertEquals((await t.run(["-o", "-u", "-v", "aliases"])).code, 0);
  assertEquals(Deno.statSync(`${t.dir}/aliases.db`).mode! & 0o777, 0o600);
  Deno.removeSync(`${t.dir}/aliases.db`);
  await t.run(["-p", "aliases"]);
  assertEquals(Deno.statSync(`${t.dir}/aliases.db`).mode! & 0o777, 0o644);
  t.cleanup();
});

Deno.test("postalias fails naming a missing source or table, and shows its usage", async () => {
  const t = instance();
  assertEquals(
    (await t.run(["missing"])).stderr,
    "postalias: fatal: open missing: No such file or directory\n",
  );
  assertEquals(
    (await t.run(["-q", "x", "missing"])).stderr,
    "postalias: fatal: open database missing.db: No such file or directory\n",
  );
  const usage =
    "postalias: fatal: usage: postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...\n";
  assertEquals((await t.run([])).stderr, usage);
  assertEquals((await t.run(["-Z", "x"])).stderr, "postalias: invalid option -- 'Z'\n" + usage);
  t.cleanup();
});

Deno.test("postalias takes the default type from default_database_type", async () => {
  const t = instance({ aliases: "a: b\n" }, "default_database_type = cdb\n");
  await t.run(["aliases"]);
  assert(Deno.statSync(`${t.dir}/aliases.cdb`).isFile);
  t.cleanup();
});
