import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";

/** A temporary config dir (with main.cf) that is also the working directory. */
function instance(files: Record<string, string> = {}, mainCf = "") {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-postmap-" });
  Deno.writeTextFileSync(`${dir}/main.cf`, mainCf);
  for (const [name, text] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, text);
  const run = (args: string[], stdin?: string | Uint8Array) =>
    runProgram("postmap", ["-c", dir, ...args], { cwd: dir, stdin });
  return { dir, run, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}

const source = 'foo bar\nFoo baz\n# comment\n\nnovalue\n"a b" x y\nlong v1\n  v2\n';

Deno.test("postmap builds a hash table and reports bad lines and duplicates as the reference", async () => {
  const t = instance({ t: source });
  const r = await t.run(["t"]);
  assertEquals(r.code, 0);
  assertEquals(
    r.stderr,
    'postmap: warning: t.db: duplicate entry: "foo"\n' +
      "postmap: warning: t, line 5: expected format: key whitespace value\n",
  );
  assert(Deno.statSync(`${t.dir}/t.db`).isFile);
  t.cleanup();
});

Deno.test("postmap -q finds a key in a hash table, folding case, and exits 1 when absent", async () => {
  const t = instance({ t: source });
  await t.run(["t"]);
  assertEquals(await t.run(["-q", "FOO", "t"]), { code: 0, stdout: "bar\n", stderr: "" });
  assertEquals((await t.run(["-q", '"a b"', "hash:t"])).stdout, "x y\n");
  assertEquals((await t.run(["-q", "long", "t"])).stdout, "v1  v2\n");
  assertEquals(await t.run(["-q", "nope", "t"]), { code: 1, stdout: "", stderr: "" });
  t.cleanup();
});

Deno.test("postmap -q - reads keys from standard input and prints key and value", async () => {
  const t = instance({ t: source });
  await t.run(["t"]);
  const r = await t.run(["-q", "-", "t"], "foo\nnope\nlong\n");
  assertEquals(r.stdout, "foo\tbar\nlong\tv1  v2\n");
  assertEquals(r.code, 0);
  assertEquals((await t.run(["-q", "-", "t"], "nope\n")).code, 1);
  t.cleanup();
});

Deno.test("postmap -q searches the tables in order", async () => {
  const t = instance({ a: "k from-a\n", b: "k from-b\nj only-b\n" });
  await t.run(["a", "cdb:b"]);
  assertEquals((await t.run(["-q", "k", "a", "cdb:b"])).stdout, "from-a\n");
  assertEquals((await t.run(["-q", "j", "a", "cdb:b"])).stdout, "only-b\n");
  t.cleanup();
});

Deno.test("postmap -s lists every entry as key<TAB>value", async () => {
  const t = instance({ t: "b 2\na 1\nc  three words\n" });
  await t.run(["t"]);
  const r = await t.run(["-s", "t"]);
  assertEquals(r.stdout.split("\n").filter(Boolean).sort(), ["a\t1", "b\t2", "c\tthree words"]);
  await t.run(["cdb:t"]);
  assertEquals((await t.run(["-s", "cdb:t"])).stdout, "b\t2\na\t1\nc\tthree words\n");
  t.cleanup();
});

Deno.test("postmap -s on a type that cannot list fails with Postfix's error", async () => {
  const t = instance();
  const r = await t.run(["-s", "static:foo"]);
  assertEquals(r.code, 1);
  assertEquals(r.stderr, "postmap: fatal: table static:foo: sequence operation is not supported\n");
  t.cleanup();
});

Deno.test("postmap -d removes a key and exits 1 when it was not there", async () => {
  const t = instance({ t: "a 1\nb 2\nc 3\n" });
  await t.run(["t"]);
  assertEquals((await t.run(["-d", "A", "t"])).code, 0);
  assertEquals((await t.run(["-d", "a", "t"])).code, 1);
  assertEquals((await t.run(["-d", "-", "t"], "b\nzz\n")).code, 0);
  assertEquals((await t.run(["-s", "t"])).stdout, "c\t3\n");
  t.cleanup();
});

Deno.test("postmap -i adds entries from standard input, warning about duplicates", async () => {
  const t = instance({ t: "a 1\n" });
  await t.run(["t"]);
  const r = await t.run(["-i", "t"], "b 2\na 9\n");
  assertEquals(r.code, 0);
  assertEquals(r.stderr, 'postmap: warning: t.db: duplicate entry: "a"\n');
  assertEquals((await t.run(["-s", "t"])).stdout, "a\t1\nb\t2\n");
  t.cleanup();
});

Deno.test("postmap -i -r replaces and -i -w silently keeps existing entries", async () => {
  const t = instance({ t: "a 1\n" });
  await t.run(["t"]);
  assertEquals((await t.run(["-i", "-w", "t"], "a 2\n")).stderr, "");
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "1\n");
  assertEquals((await t.run(["-i", "-r", "t"], "a 3\n")).stderr, "");
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "3\n");
  t.cleanup();
});

Deno.test("postmap -r and -w while building handle duplicates quietly", async () => {
  const t = instance({ t: "a 1\na 2\n" });
  assertEquals((await t.run(["-r", "t"])).stderr, "");
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "2\n");
  assertEquals((await t.run(["-w", "t"])).stderr, "");
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "1\n");
  t.cleanup();
});

Deno.test("postmap -i on a table that does not exist fails naming the file", async () => {
  const t = instance();
  const r = await t.run(["-i", "t"], "a 1\n");
  assertEquals(r.code, 1);
  assertEquals(r.stderr, "postmap: fatal: open database t.db: No such file or directory\n");
  t.cleanup();
});

Deno.test("postmap -f keeps key case when building and querying", async () => {
  const t = instance({ t: "MixedKey v\n" });
  await t.run(["-f", "t"]);
  assertEquals((await t.run(["-f", "-q", "MixedKey", "t"])).stdout, "v\n");
  assertEquals((await t.run(["-f", "-q", "mixedkey", "t"])).code, 1);
  t.cleanup();
});

Deno.test("postmap -N stores null terminators and -n does not; plain queries find both", async () => {
  const t = instance({ t: "a 1\n" });
  await t.run(["-N", "t"]);
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "1\n");
  assertEquals((await t.run(["-n", "-q", "a", "t"])).code, 1);
  assertEquals((await t.run(["-s", "t"])).stdout, "a\t1\n");
  await t.run(["-n", "t"]);
  assertEquals((await t.run(["-N", "-q", "a", "t"])).code, 1);
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "1\n");
  t.cleanup();
});

Deno.test("postmap -F stores files base64-encoded and decodes them on query", async () => {
  const t = instance({ t: "x f1, f2\n", f1: "hello\n", f2: "world" });
  await t.run(["-F", "t"]);
  assertEquals((await t.run(["-q", "x", "t"])).stdout, btoa("hello\n\nworld") + "\n");
  assertEquals((await t.run(["-F", "-q", "x", "t"])).stdout, "hello\n\nworld\n");
  assertEquals((await t.run(["-F", "-s", "t"])).stdout, "x\thello\n\nworld\n");
  t.cleanup();
});

const message = "Subject: hello\nFrom: a\n  folded\n\nbody line 1\nbody 2\n";
const checks = "/hello/ H\n/folded/ F\n/body/ B\n";

Deno.test("postmap -h -q - queries each logical header line of a message", async () => {
  const t = instance({ re: checks });
  const r = await t.run(["-h", "-q", "-", "regexp:re"], message);
  assertEquals(r.stdout, "Subject: hello\tH\nFrom: a\n  folded\tF\n");
  t.cleanup();
});

Deno.test("postmap -b -q - queries each body line of a message", async () => {
  const t = instance({ re: checks });
  const r = await t.run(["-b", "-q", "-", "regexp:re"], message);
  assertEquals(r.stdout, "body line 1\tB\nbody 2\tB\n");
  const all = await t.run(["-b", "-q", "-", "inline:{{=empty}}"], "Subject: x\n\nbody\n");
  assertEquals(all.stdout, "\tempty\n", "the empty line that ends the headers is a body line");
  t.cleanup();
});

Deno.test("postmap gives a new table the source's read permissions, or 0644 with -p", async () => {
  const t = instance({ t: "a 1\n" });
  Deno.chmodSync(`${t.dir}/t`, 0o640);
  await t.run(["t"]);
  assertEquals(Deno.statSync(`${t.dir}/t.db`).mode! & 0o777, 0o640);
  Deno.removeSync(`${t.dir}/t.db`);
  await t.run(["-p", "t"]);
  assertEquals(Deno.statSync(`${t.dir}/t.db`).mode! & 0o777, 0o644);
  Deno.chmodSync(`${t.dir}/t.db`, 0o600);
  await t.run(["t"]);
  assertEquals(Deno.statSync(`${t.dir}/t.db`).mode! & 0o777, 0o600);
  t.cleanup();
});

Deno.test("postmap -o, -u and -v are accepted", async () => {
  const t = instance({ t: "a 1\n" });
  assertEquals((await t.run(["-o", "-u", "-v", "t"])).code, 0);
  assertEquals((await t.run(["-u", "-q", "a", "t"])).stdout, "1\n");
  t.cleanup();
});

Deno.test("postmap takes the default type from default_database_type", async () => {
  const t = instance({ t: "a 1\n" }, "default_database_type = cdb\n");
  await t.run(["t"]);
  assert(Deno.statSync(`${t.dir}/t.cdb`).isFile);
  assertEquals((await t.run(["-q", "a", "t"])).stdout, "1\n");
  t.cleanup();
});

Deno.test("postmap reads MAIL_CONFIG when -c is absent", async () => {
  const t = instance({ t: "a 1\n" }, "default_database_type = cdb\n");
  const r = await runProgram("postmap", ["t"], { cwd: t.dir, env: { MAIL_CONFIG: t.dir } });
  assertEquals(r.code, 0);
  assert(Deno.statSync(`${t.dir}/t.cdb`).isFile);
  t.cleanup();
});

Deno.test("postmap queries every other table type by type:name", async () => {
  const t = instance({ c: "10.0.0.0/8 ten\n", th: "k v\n" });
  assertEquals((await t.run(["-q", "10.1.1.1", "cidr:c"])).stdout, "ten\n");
  assertEquals((await t.run(["-q", "k", "texthash:th"])).stdout, "v\n");
  assertEquals((await t.run(["-q", "y", "inline:{ x=1, {y = 2 3} }"])).stdout, "2 3\n");
  assertEquals((await t.run(["-q", "a", "unionmap:{inline:{a=1}, inline:{a=2}}"])).stdout, "1,2\n");
  assertEquals((await t.run(["-q", "z", "static:fixed"])).stdout, "fixed\n");
  t.cleanup();
});

Deno.test("postmap -q on a fail table exits 1 with Postfix's query error", async () => {
  const t = instance();
  const r = await t.run(["-q", "x", "fail:foo"]);
  assertEquals(r.code, 1);
  assertEquals(r.stderr, "postmap: fatal: table fail:foo: query error: Application error\n");
  t.cleanup();
});

Deno.test("postmap fails clearly on a missing source, an unknown type, or a pattern type to build", async () => {
  const t = instance();
  assertEquals(
    (await t.run(["nosuch"])).stderr,
    "postmap: fatal: open nosuch: No such file or directory\n",
  );
  assertEquals(
    (await t.run(["-q", "x", "nosuch"])).stderr,
    "postmap: fatal: open database nosuch.db: No such file or directory\n",
  );
  assertEquals(
    (await t.run(["foo:t"])).stderr,
    "postmap: fatal: unsupported dictionary type: foo\n",
  );
  Deno.writeTextFileSync(`${t.dir}/re`, "/a/ b\n");
  assertEquals(
    (await t.run(["regexp:re"])).stderr,
    "postmap: fatal: unsupported dictionary type: regexp does not support bulk-mode creation.\n",
  );
  // No proxymap running here: the query fails on the service's socket.
  const proxy = await t.run(["-q", "x", "proxy:hash:t"]);
  assertEquals(proxy.code, 1);
  assertStringIncludes(proxy.stderr, "/proxymap: No such file or directory");
  assertEquals(
    (await t.run(["proxy:hash:t"])).stderr,
    "postmap: fatal: can't create maps via the proxy service\n",
  );
  t.cleanup();
});

Deno.test("postmap usage errors: no table, a bad flag, two operations", async () => {
  const t = instance();
  const usage =
    "postmap: fatal: usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...\n";
  assertEquals(await t.run([]), { code: 1, stdout: "", stderr: usage });
  const bad = await t.run(["-Z", "t"]);
  assertEquals(bad.stderr, "postmap: invalid option -- 'Z'\n" + usage);
  assertEquals(
    (await t.run(["-q", "x", "-s", "t"])).stderr,
    "postmap: fatal: specify only one of -s or -q or -d\n",
  );
  t.cleanup();
});

Deno.test("postmap without main.cf fails naming it", async () => {
  const dir = Deno.makeTempDirSync();
  const r = await runProgram("postmap", ["-c", dir, "-q", "x", "static:y"]);
  assertEquals(r.stderr, `postmap: fatal: open ${dir}/main.cf: No such file or directory\n`);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("postmap rebuild is atomic: a concurrent reader sees the old table or the new one", async () => {
  const lines = (v: string) =>
    Array.from({ length: 20000 }, (_, i) => `k${i} ${v}`).join("\n") + "\n";
  const t = instance({ t: lines("old") });
  await t.run(["t"]);
  Deno.writeTextFileSync(`${t.dir}/t`, lines("new"));
  const rebuild = t.run(["t"]);
  const seen = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const r = await t.run(["-q", "-", "t"], "k0\nk19999\n");
    assertEquals(r.code, 0, r.stderr);
    const values = r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[1]);
    assertEquals(values.length, 2);
    assertEquals(values[0], values[1]);
    seen.add(values[0]);
  }
  assertEquals((await rebuild).code, 0);
  assertEquals((await t.run(["-q", "k5", "t"])).stdout, "new\n");
  assertEquals([...Deno.readDirSync(t.dir)].map((e) => e.name).sort(), ["main.cf", "t", "t.db"]);
  t.cleanup();
});

Deno.test("two concurrent postmap -i writers both land their entries", async () => {
  const t = instance({ t: "seed 0\n" });
  await t.run(["t"]);
  const batch = (p: string) =>
    Array.from({ length: 2000 }, (_, i) => `${p}${i} v`).join("\n") + "\n";
  const [a, b] = await Promise.all([
    t.run(["-i", "t"], batch("a")),
    t.run(["-i", "t"], batch("b")),
  ]);
  assertEquals([a.code, b.code, a.stderr, b.stderr], [0, 0, "", ""]);
  const all = (await t.run(["-s", "t"])).stdout.split("\n").filter(Boolean);
  assertEquals(all.length, 4001);
  t.cleanup();
});

Deno.test("postmap -q - falls through to later tables key by key", async () => {
  const t = instance({ a: "k1 a1\n", b: "k1 b1\nk2 b2\n" });
  await t.run(["a"]);
  await t.run(["cdb:b"]);
  const r = await t.run(["-q", "-", "a", "cdb:b", "inline:{k3=i3}"], "k3\nk2\nk1\nk4\n");
  assertEquals(r, { code: 0, stdout: "k3\ti3\nk2\tb2\nk1\ta1\n", stderr: "" });
  t.cleanup();
});

Deno.test("postmap -q - on a failing table exits 1 with the query error", async () => {
  const t = instance();
  const r = await t.run(["-q", "-", "fail:x"], "a\n");
  assertEquals([r.code, r.stderr], [
    1,
    "postmap: fatal: table fail:x: query error: Application error\n",
  ]);
  t.cleanup();
});

const mimeMessage = [
  "Subject: outer",
  'Content-Type: multipart/mixed; boundary="B"',
  "",
  "--B",
  "Content-Type: text/plain",
  "",
  "text",
  "--B--",
  "",
].join("\n");

Deno.test("postmap -m makes MIME part headers header keys, not body keys", async () => {
  const t = instance({ re: "/(.*)/ [$1]\n" });
  const h = await t.run(["-h", "-m", "-q", "-", "regexp:re"], mimeMessage);
  assertEquals(h.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]), [
    "Subject: outer",
    'Content-Type: multipart/mixed; boundary="B"',
    "Content-Type: text/plain",
  ]);
  const b = await t.run(["-b", "-m", "-q", "-", "regexp:re"], mimeMessage);
  assertEquals(b.stdout, "\t[]\n--B\t[--B]\n\t[]\ntext\t[text]\n--B--\t[--B--]\n");
  t.cleanup();
});

Deno.test("postmap -d and -i on tables that cannot change fail with the reference's errors", async () => {
  const t = instance({ re: "/a/ b\n" });
  assertEquals(
    (await t.run(["-d", "x", "regexp:re"])).stderr,
    "postmap: fatal: regexp:re map requires O_RDONLY access mode\n",
  );
  assertEquals(
    (await t.run(["-i", "regexp:re"], "a b\n")).stderr,
    "postmap: fatal: unsupported dictionary type: regexp does not support bulk-mode creation.\n",
  );
  assertEquals(
    (await t.run(["-d", "x", "static:y"])).stderr,
    "postmap: fatal: table static:y: delete operation is not supported\n",
  );
  assertEquals(
    (await t.run(["-d", "x", "inline:{a=b}"])).stderr,
    "postmap: fatal: inline:{a=b} map requires O_RDONLY access mode\n",
  );
  t.cleanup();
});

Deno.test("postmap with smtputf8_enable skips non-UTF-8 input and folds Unicode keys", async () => {
  const t = instance({}, "smtputf8_enable = yes\n");
  Deno.writeFileSync(
    `${t.dir}/t`,
    new Uint8Array([
      ...new TextEncoder().encode("caf"),
      0xe9,
      ...new TextEncoder().encode(" x\nCAFÉ z\n"),
    ]),
  );
  const r = await t.run(["t"]);
  assertEquals(
    r.stderr,
    'postmap: warning: t, line 1: non-UTF-8 input "caf? x" -- ignoring this line\n',
  );
  assertEquals((await t.run(["-s", "t"])).stdout, "café\tz\n");
  const bad = await t.run(["-q", "-", "t"], new Uint8Array([0x63, 0xe9, 10]));
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr,
    'postmap: warning: hash:t.db: non-UTF-8 key "c?": malformed UTF-8 or invalid codepoint\n',
  );
  t.cleanup();
});
