import { assertEquals, assertThrows } from "../assert.ts";
import { DictError, openMap } from "../../maps/mod.ts";
import { tempDir, withLog } from "./helpers.ts";

async function table(type: string, text: string) {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/t`, text);
  const { result, log } = await withLog(() => openMap(`${type}:${dir}/t`));
  cleanup();
  return { dict: result, log: log.map((l) => l.replace(`${dir}/t`, "FILE")) };
}

Deno.test("regexp table substitutes $1 and matches case-insensitively by default", async () => {
  const { dict } = await table("regexp", "/^(.*)@example\\.com$/ local $1 ${1} $(1)\n");
  assertEquals(await dict.lookup("Joe@EXAMPLE.com"), "local Joe Joe Joe");
  assertEquals(await dict.lookup("joe@example.org"), undefined);
});

Deno.test("regexp flag i makes a pattern case-sensitive", async () => {
  const { dict } = await table("regexp", "/^bar/i sensitive\n/^BAR/ insensitive\n");
  assertEquals(await dict.lookup("bar"), "sensitive");
  assertEquals(await dict.lookup("Bar"), "insensitive");
});

Deno.test("regexp first match wins and $$ is a dollar", async () => {
  const { dict } = await table("regexp", "/a/ first $$5\n/a/ second\n");
  assertEquals(await dict.lookup("a"), "first $5");
});

Deno.test("regexp negated pattern matches what the pattern does not", async () => {
  const { dict } = await table("regexp", "!/^x/ not x\n");
  assertEquals(await dict.lookup("yes"), "not x");
  assertEquals(await dict.lookup("xylophone"), undefined);
});

Deno.test("regexp if/endif guards a block, nested", async () => {
  const { dict } = await table(
    "regexp",
    "if /@example\\.com$/\nif !/^admin/\n/^(.*)@/ user $1\nendif\n/^admin/ ADMIN\nendif\n/./ other\n",
  );
  assertEquals(await dict.lookup("joe@example.com"), "user joe");
  assertEquals(await dict.lookup("admin@example.com"), "ADMIN");
  assertEquals(await dict.lookup("joe@example.org"), "other");
});

Deno.test("regexp translates POSIX bracket classes and word boundaries", async () => {
  const { dict } = await table(
    "regexp",
    "/^[[:digit:]]+$/ digits\n/^[[:alpha:]_]+$/ word\n/\\<cat\\>/ cat\n/[\\]/ backslash\n",
  );
  assertEquals(await dict.lookup("12345"), "digits");
  assertEquals(await dict.lookup("abc_D"), "word");
  assertEquals(await dict.lookup("a cat sat"), "cat");
  assertEquals(await dict.lookup("concatenate"), "word");
  assertEquals(await dict.lookup("concatenate!"), undefined);
  assertEquals(await dict.lookup("a\\b"), "backslash");
});

Deno.test("regexp dot matches a newline unless the m flag is given", async () => {
  const { dict } = await table("regexp", "/^a.b$/ dot\n/^c$/m line\n");
  assertEquals(await dict.lookup("a\nb"), "dot");
  assertEquals(await dict.lookup("x\nc\ny"), "line");
});

Deno.test("regexp x flag switches to basic syntax", async () => {
  const { dict } = await table(
    "regexp",
    "/^\\(ab\\)*$/x basic $1\n/^a+$/x plus\n/^\\(cd\\)+$/x literal\n",
  );
  assertEquals(await dict.lookup("abab"), "basic ab");
  assertEquals(await dict.lookup("a+"), "plus");
  assertEquals(await dict.lookup("aa"), undefined);
  assertEquals(await dict.lookup("cdcd"), undefined);
});

Deno.test("regexp with another delimiter and an escaped delimiter", async () => {
  const { dict } = await table("regexp", "|^a/b|i slash\n/^c\\/d$/ escaped\n");
  assertEquals(await dict.lookup("a/b"), "slash");
  assertEquals(await dict.lookup("c/d"), "escaped");
});

Deno.test("regexp bad lines are skipped with Postfix's warnings and the rest loads", async () => {
  const { dict, log } = await table(
    "regexp",
    [
      "/^yes$/ YES $1",
      "/(unclosed/ bad",
      "/abc/q badflag",
      "noslash here",
      "/a/",
      "endif",
      "!/(x)/ $1",
      "/ok/ fine",
      "if /zz/",
    ].join("\n") + "\n",
  );
  assertEquals(log, [
    'warning: regexp map FILE, line 1: out of range replacement index "1": skipping this rule',
    "warning: regexp map FILE, line 2: error in regex: Unterminated group: skipping this rule",
    'warning: regexp map FILE, line 3: unknown regexp option "q": skipping this rule',
    "warning: regexp map FILE, line 4: ignoring unrecognized request",
    "warning: regexp map FILE, line 5: no replacement text: using empty string",
    "warning: regexp map FILE, line 6: ignoring ENDIF without matching IF",
    "warning: regexp map FILE, line 7: $number found in negative match replacement text: skipping this rule",
    "warning: regexp map FILE, line 9: IF has no matching ENDIF",
  ]);
  assertEquals(await dict.lookup("ok"), "fine");
  assertEquals(await dict.lookup("a"), "");
});

Deno.test("regexp table refuses listing and updates", async () => {
  const { dict } = await table("regexp", "/a/ b\n");
  const it = dict.sequence()[Symbol.asyncIterator]();
  let failed = false;
  try {
    await it.next();
  } catch (e) {
    failed = e instanceof DictError;
  }
  assertEquals(failed, true);
});

Deno.test("a missing regexp file fails naming the file", () => {
  assertThrows(
    () => openMap("regexp:/nonexistent/re"),
    DictError,
    "open /nonexistent/re: No such file or directory",
  );
});

Deno.test("pcre table supports PCRE escapes, lazy quantifiers and named groups", async () => {
  const { dict } = await table(
    "pcre",
    "/^(?P<user>[^@]+?)\\+.*@(\\S+)$/ $1 at $2\n/\\Aexact\\z/ exact\n/\\d{3}-\\d{4}/ phone\n",
  );
  assertEquals(await dict.lookup("joe+x@example.com"), "joe at example.com");
  assertEquals(await dict.lookup("exact"), "exact");
  assertEquals(await dict.lookup("exact\n"), undefined);
  assertEquals(await dict.lookup("call 555-1234"), "phone");
});

Deno.test("pcre flags s, x, A, U and E translate to JavaScript", async () => {
  const { dict } = await table(
    "pcre",
    [
      "/^a.b$/s dotall",
      "/ ^ c   d /x extended",
      "/e/A anchored",
      "/^(f.+)g/U ungreedy $1",
      "/^h$/E endonly",
      "/^i$/ dollar",
    ].join("\n") + "\n",
  );
  assertEquals(await dict.lookup("a\nb"), "dotall");
  assertEquals(await dict.lookup("cd"), "extended");
  assertEquals(await dict.lookup("eee"), "anchored");
  assertEquals(await dict.lookup("xe"), undefined);
  assertEquals(await dict.lookup("fxxgxxg"), "ungreedy fxx");
  assertEquals(await dict.lookup("h\n"), undefined);
  assertEquals(await dict.lookup("i\n"), "dollar");
});

Deno.test("pcre constructs without a JavaScript equivalent are skipped with a warning", async () => {
  const { dict, log } = await table("pcre", "/(?>atomic)/ a\n/a++/ b\n/ok/ c\n");
  assertEquals(log, [
    'warning: pcre map FILE, line 1: cannot translate "(?>" to a JavaScript regular expression: skipping this rule',
    'warning: pcre map FILE, line 2: cannot translate "++" to a JavaScript regular expression: skipping this rule',
  ]);
  assertEquals(await dict.lookup("ok"), "c");
});

Deno.test("regexp tables do not fold the key before matching", async () => {
  const { dict } = await table("pcre", "/^([A-Z]+)$/i upper $1\n");
  assertEquals(await dict.lookup("ABC"), "upper ABC");
  assertEquals(await dict.lookup("abc"), undefined);
});

Deno.test("regexp POSIX collating elements and equivalence classes are skipped with a warning", async () => {
  const { dict, log } = await table("regexp", "/[[=a=]]/ eq\n/[[.hyphen.]]/ coll\n/ok/ fine\n");
  assertEquals(log, [
    'warning: regexp map FILE, line 1: cannot translate "[=a=]" to a JavaScript regular expression: skipping this rule',
    'warning: regexp map FILE, line 2: cannot translate "[.hyphen.]" to a JavaScript regular expression: skipping this rule',
  ]);
  assertEquals(await dict.lookup("ok"), "fine");
});

Deno.test("pcre inline (?i) applies to the rest of its group", async () => {
  const { dict } = await table("pcre", "/^a(?i)bc$/i tail\n/^(x(?i)y)z$/i group\n");
  assertEquals(await dict.lookup("aBC"), "tail");
  assertEquals(await dict.lookup("ABC"), undefined);
  assertEquals(await dict.lookup("xYz"), "group");
  assertEquals(await dict.lookup("xYZ"), undefined);
});
