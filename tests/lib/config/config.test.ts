// lib/config: expansion forms, main.cf and master.cf syntax, the parameter
// table, typed accessors and the errors worded as Postfix words them.

import { assert, assertEquals, assertThrows } from "../../assert.ts";
import { runProgram } from "../../run.ts";
import {
  configFromText,
  MacroError,
  MainCfError,
  parameters,
  splitList,
  timeUnit,
} from "../../../lib/config/mod.ts";
import { defaults } from "../../../lib/config/defaults.ts";
import { expand } from "../../../lib/config/expand.ts";
import { parseMainCf } from "../../../lib/config/main_cf.ts";
import { logicalLines } from "../../../lib/config/logical_lines.ts";
import {
  MasterCfError,
  normalizeSetting,
  parseMasterCf,
  splitWords,
} from "../../../lib/config/master_cf.ts";
import { editMainCf, editMasterCf } from "../../../lib/config/edit.ts";
import { foldWords, formatMasterEntry, masterFields } from "../../../lib/config/format.ts";
import { referencedNames, serviceParameters, transportDefault } from "../../../lib/config/usage.ts";

const table: Record<string, string> = {
  a: "A",
  b: "$a-B",
  empty: "",
  level: "3.6",
  loop: "x $loop",
  ping: "$pong",
  pong: "${ping}",
};
const look = (n: string) => table[n];
const x = (text: string) => expand(text, look);

Deno.test("expansion: $name, ${name} and $(name) expand recursively", () => {
  assertEquals(x("$a ${a} $(a)"), "A A A");
  assertEquals(x("[$b]"), "[A-B]");
  assertEquals(x("$a$a"), "AA");
});

Deno.test("expansion: $$ is a literal dollar and an undefined name expands to nothing", () => {
  assertEquals(x("cost $$5"), "cost $5");
  const missing: string[] = [];
  assertEquals(expand("<$nosuch>", look, { onUndefined: (n) => missing.push(n) }), "<>");
  assertEquals(missing, ["nosuch"]);
});

Deno.test("expansion: ${name?value} and ${name?{value}} apply when name is non-empty", () => {
  assertEquals(x("${a?yes}"), "yes");
  assertEquals(x("${empty?yes}"), "");
  assertEquals(x("${nosuch?yes}"), "");
  assertEquals(x("${a?{with $a}}"), "with A");
});

Deno.test("expansion: ${name:value} and ${name:{value}} apply when name is empty or undefined", () => {
  assertEquals(x("${empty:fallback}"), "fallback");
  assertEquals(x("${nosuch:{fall back}}"), "fall back");
  assertEquals(x("${a:fallback}"), "");
});

Deno.test("expansion: ${name?{value1}:{value2}} chooses one of two", () => {
  assertEquals(x("${a?{set}:{unset}}"), "set");
  assertEquals(x("${empty?{set}:{unset}}"), "unset");
});

Deno.test("expansion: relational ${{a} == {b} ? {x} : {y}} with every operator", () => {
  assertEquals(x("${{$a} == {A} ? {same} : {differ}}"), "same");
  assertEquals(x("${{$a} != {A} ? {differ} : {same}}"), "same");
  assertEquals(x("${{10} < {9} ? {lt} : {ge}}"), "ge"); // numbers compare as numbers
  assertEquals(x("${{b} > {a} ? {gt} : {le}}"), "gt");
  assertEquals(x("${{2} <= {2} ? {le}}"), "le");
  assertEquals(x("${{1} >= {2} ? {ge}}"), "");
});

Deno.test("expansion: compatibility levels compare with <level and friends", () => {
  assertEquals(x("${{$level} <level {3.10} ? {older} : {newer}}"), "older");
  assertEquals(x("${{$level} >=level {2} ? {yes}}"), "yes");
  assertEquals(x("${{3.6.1} ==level {3.6} ? {eq} : {ne}}"), "ne");
});

Deno.test("expansion: a reference loop is unreasonable macro call nesting", () => {
  const err = assertThrows(() => x("$ping"), MacroError, "unreasonable macro call nesting");
  assert(err.depth > 0);
  const self = assertThrows(() => x("$loop"), MacroError);
  assertEquals(self.messages, [
    'unreasonable macro call nesting: "x "',
    'unreasonable macro call nesting: "loop"',
  ]);
});

Deno.test("expansion: a truncated macro is reported with its text", () => {
  assertThrows(() => x("x ${a"), MacroError, 'truncated macro reference: "${a"');
  assertThrows(() => referencedNames("${a"), Error, "truncated macro reference");
  assertEquals(referencedNames("$a ${b?$c} $(d) ${{$e} == {1} ? {$f}} $$g"), [
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
  ]);
});

Deno.test("main.cf: continuation lines join with one space, comments and blank lines vanish", () => {
  const text = "# comment\na = one\n  two\n\n   # indented comment\n\tthree\nb=x # not a comment\n";
  assertEquals(logicalLines(text).map((l) => [l.text, l.line]), [
    ["a = one two three", 2],
    ["b=x # not a comment", 7],
  ]);
  const settings = parseMainCf(text, "main.cf");
  assertEquals(settings.map((s) => [s.name, s.value]), [["a", "one two three"], [
    "b",
    "x # not a comment",
  ]]);
});

Deno.test("main.cf: a line without '=' is fatal with file and line", () => {
  const err = assertThrows(() => parseMainCf("a = 1\nbad line\n", "/x/main.cf"), MainCfError);
  assertEquals(err.message, `/x/main.cf, line 2: missing '=' after attribute name: "bad line"`);
});

Deno.test("main.cf: the later of two settings wins", () => {
  const config = configFromText("/nowhere", "relayhost = a\nrelayhost = b\n");
  assertEquals(config.get("relayhost"), "b");
});

Deno.test("a missing main.cf is fatal: open DIR/main.cf: No such file or directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runProgram("postconf", ["-c", dir, "-n"]);
    assertEquals(r.code, 1);
    assertEquals(r.stderr, `postconf: fatal: open ${dir}/main.cf: No such file or directory\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("master.cf: { } groups are one word and -o { name = value } is normalised", () => {
  assertEquals(splitWords("a { b c } -o {x = y z}"), ["a", "{ b c }", "-o", "{x = y z}"]);
  assertEquals(normalizeSetting("{ name = value with space }"), "name=value with space");
  const [entry] = parseMasterCf(
    "submission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n" +
      "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n",
    "master.cf",
  );
  assertEquals(entry.service, "submission");
  assertEquals(entry.command, "smtpd");
  assertEquals(entry.overrides, [
    ["syslog_name", "postfix/submission"],
    ["smtpd_client_restrictions", "permit_sasl_authenticated, reject"],
  ]);
});

Deno.test("master.cf: -o overrides apply over main.cf through withOverrides", () => {
  const config = configFromText("/nowhere", "smtpd_banner = main\nmyhostname = h.example\n");
  const [entry] = parseMasterCf("smtp inet n - n - - smtpd -o smtpd_banner=$myhostname\n", "m");
  const service = config.withOverrides(Object.fromEntries(entry.overrides));
  assertEquals(service.get("smtpd_banner"), "h.example");
  assertEquals(config.get("smtpd_banner"), "main");
});

Deno.test("master.cf: a bad field is refused with the reference's wording", () => {
  const err = assertThrows(() => parseMasterCf("smtp inet x - - - - smtpd\n", "m"), MasterCfError);
  assertEquals(err.message, 'invalid private field "x" in "smtp inet x - - - - smtpd"');
  assertThrows(() => parseMasterCf("s fifo - - - 1x - c\n", "m"), MasterCfError, "wakeup");
  assertThrows(() => parseMasterCf("s bogus - - - - - c\n", "m"), MasterCfError, "type");
});

Deno.test("master.cf: too few fields is a bad field count with file and line", () => {
  const err = assertThrows(
    () => parseMasterCf("# c\nsmtp inet n - n - - smtpd\n\nsmtp inet n\n", "/x/master.cf"),
    MasterCfError,
  );
  assertEquals(err.message, "file /x/master.cf: line 4: bad field count");
});

Deno.test("parameter table: every default has a type, time parameters a unit", () => {
  for (const name of Object.keys(defaults)) assert(parameters[name], name);
  assertEquals(parameters.maximal_queue_lifetime, {
    type: "time",
    unit: "d",
    readers: ["oqmgr", "qmgr"],
  });
  assertEquals(parameters.message_size_limit.type, "size");
  assertEquals(parameters.biff.type, "boolean");
  assertEquals(parameters.smtpd_recipient_restrictions.type, "list");
  assertEquals(parameters.default_process_limit.type, "integer");
  assertEquals(timeUnit("delay_warning_time"), "h");
  assert(parameters.smtpd_banner.readers.includes("smtpd"));
  assert(parameters.forward_path.raw);
});

Deno.test("Config.time: a bare number uses the parameter's own unit", () => {
  const config = configFromText("/nowhere", "maximal_queue_lifetime = 2\nipc_timeout = 5m\n");
  assertEquals(config.time("maximal_queue_lifetime"), 2 * 86400);
  assertEquals(config.time("ipc_timeout"), 300);
  assertEquals(config.time("bounce_queue_lifetime"), 5 * 86400);
  assertEquals(config.time("maximal_queue_lifetime", "s"), 2);
});

Deno.test("Config: defaults, names, mail_name and syslog_name", () => {
  const config = configFromText("/nowhere", "myhostname = mail.example.com\n");
  assertEquals(config.get("mail_name"), "Posthorn");
  assertEquals(config.get("syslog_name"), "postfix");
  assertEquals(config.get("mydomain"), "example.com");
  assertEquals(config.get("myorigin"), "mail.example.com");
  assertEquals(config.get("relay_destination_concurrency_limit"), "20");
  assert(config.isKnown("relay_destination_concurrency_limit"));
  assert(!config.isKnown("no_such_parameter"));
  assertEquals(config.bool("biff"), true);
  assertEquals(config.int("default_process_limit"), 100);
  assertEquals(splitList("a, b {c d},e"), ["a", "b", "{c d}", "e"]);
});

Deno.test("service parameters: delivery agents take the transport suffixes, pipe a time limit", () => {
  const params = serviceParameters([["relay", "smtp"], ["mailman", "pipe"], ["pickup", "pickup"]]);
  assertEquals(
    params.get("relay_destination_concurrency_limit"),
    "$default_destination_concurrency_limit",
  );
  assertEquals(
    params.get("relay_initial_destination_concurrency"),
    "$initial_destination_concurrency",
  );
  assertEquals(params.get("mailman_time_limit"), "$command_time_limit");
  assert(!params.has("relay_time_limit"));
  assert(!params.has("pickup_destination_concurrency_limit"));
  assertEquals(transportDefault("x_recipient_limit"), "$default_recipient_limit");
});

Deno.test("editing main.cf keeps comments and order, replaces continuation lines, appends", () => {
  const text = "# head\na = 1\n  2\n#between\nb = x\n";
  assertEquals(
    editMainCf(text, { set: new Map([["a", "new"], ["c", "3"]]) }),
    "# head\na = new\n#between\nb = x\nc = 3\n",
  );
  assertEquals(
    editMainCf(text, { comment: new Set(["a"]) }),
    "# head\n#a = 1\n#  2\n#between\nb = x\n",
  );
  assertEquals(editMainCf(text, { remove: new Set(["a", "b"]) }), "# head\n#between\n");
});

Deno.test("editing master.cf rewrites the changed entry folded, comments inside come first", () => {
  const text = "smtp inet n - n - - smtpd\n#c\n  -o a=b\npickup unix n - n 60 1 pickup\n";
  const out = editMasterCf(
    text,
    (e) =>
      e.fields[0] === "smtp"
        ? { action: "replace", entry: { fields: e.fields, command: [...e.command, "-o", "c=d"] } }
        : undefined,
  );
  assertEquals(
    out,
    "#c\nsmtp       inet  n       -       n       -       -       smtpd\n    -o a=b\n    -o c=d\n" +
      "pickup unix n - n 60 1 pickup\n",
  );
});

Deno.test("folding: lines up to 80 columns stay whole, longer ones continue indented", () => {
  const word = "x".repeat(64);
  assertEquals(foldWords("mydestination =", [word], true), `mydestination = ${word}`);
  assertEquals(foldWords("mydestination =", [word + "y"], true), `mydestination =\n    ${word}y`);
  assertEquals(foldWords("a =", ["1", "2"], false), "a = 1 2");
  const entry = masterFields("postlog unix-dgram n - n - 1 postlogd");
  assertEquals(
    formatMasterEntry(entry, false),
    "postlog    unix-dgram n  -       n       -       1       postlogd",
  );
});
