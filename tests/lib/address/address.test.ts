import { assertEquals } from "../../assert.ts";
import {
  extractAddresses,
  formatAddressList,
  fullName,
  isDotString,
  listMailboxes,
  parseAddressList,
  quoteAddress,
  rewriteAddress,
  type RewriteRules,
  scanTokens,
  splitAddress,
  unquoteAddress,
} from "../../../lib/address/mod.ts";

Deno.test("scanTokens() separates atoms, specials, quoted strings, comments, literals", () => {
  const toks = scanTokens('"A \\"B\\"" (c (nested)) <x@[1.2.3.4]>');
  assertEquals(toks.map((t) => [t.type, t.text]), [
    ["qstring", 'A "B"'],
    ["comment", "c (nested)"],
    ["special", "<"],
    ["atom", "x"],
    ["special", "@"],
    ["domlit", "[1.2.3.4]"],
    ["special", ">"],
  ]);
});

Deno.test("scanTokens() ends an unterminated quoted string at the end of the text", () => {
  assertEquals(scanTokens('"abc').map((t) => t.text), ["abc"]);
  assertEquals(scanTokens("(abc").map((t) => t.type), ["comment"]);
});

Deno.test("scanTokens() honours the token limit", () => {
  assertEquals(scanTokens("a, b, c, d", 3).length, 3);
});

Deno.test("extractAddresses() takes plain, angle, and commented addresses", () => {
  assertEquals(
    extractAddresses("bob@example.com, Carol <carol@example.com>, dave@example.com (Dave D)"),
    ["bob@example.com", "carol@example.com", "dave@example.com"],
  );
});

Deno.test("extractAddresses() takes group members and skips empty groups", () => {
  assertEquals(extractAddresses("undisclosed-recipients:;"), []);
  assertEquals(
    extractAddresses("Team: a@x.example, B <b@x.example>;, c@y.example"),
    ["a@x.example", "b@x.example", "c@y.example"],
  );
});

Deno.test("extractAddresses() unquotes quoted local parts and keeps commas in quotes", () => {
  assertEquals(
    extractAddresses('"Doe, John" <"john doe"@example.com>, "a\\"b"@example.com'),
    ["john doe@example.com", 'a"b@example.com'],
  );
});

Deno.test("extractAddresses() strips an obsolete source route", () => {
  assertEquals(extractAddresses("<@relay1,@relay2:user@example.com>"), ["user@example.com"]);
});

Deno.test("extractAddresses() takes a < without > as part of one address, and skips empty elements", () => {
  // The reference's tok822 does so: "Joe <joe" becomes the local part "Joe <joe".
  assertEquals(extractAddresses("Joe <joe@example.com"), ["Joe <joe@example.com"]);
  assertEquals(extractAddresses(",, x@example.com ,"), ["x@example.com"]);
});

Deno.test("extractAddresses() keeps the null address of <>", () => {
  assertEquals(extractAddresses("<>"), [""]);
});

Deno.test("extractAddresses() keeps domain literals and 8-bit local parts", () => {
  assertEquals(extractAddresses("u@[192.0.2.1], jörg@example.com"), [
    "u@[192.0.2.1]",
    "jörg@example.com",
  ]);
});

Deno.test("parseAddressList() records phrase, comments and groups", () => {
  const list = parseAddressList('"Ann Q." Public <ann@x> (home), G: b@y;');
  assertEquals(list.length, 2);
  const [ann, group] = list;
  assertEquals(ann.kind, "mailbox");
  if (ann.kind === "mailbox") {
    assertEquals(ann.phrase, '"Ann Q." Public');
    assertEquals(ann.comments, ["home"]);
    assertEquals(fullName(ann), "Ann Q. Public");
  }
  assertEquals(group.kind === "group" ? group.members.map((m) => m.address) : [], ["b@y"]);
});

Deno.test("fullName() falls back on the comment of a bare address", () => {
  const [box] = listMailboxes(parseAddressList("root@example.com (Charlie Root)"));
  assertEquals(fullName(box), "Charlie Root");
});

Deno.test("formatAddressList() prints rewritten addresses, quoting where needed, folded", () => {
  const list = parseAddressList("Bob <bob>, g: carol;, x (c)");
  for (const box of listMailboxes(list)) box.address = box.address + "@example.com";
  listMailboxes(list)[2].address = "x y@example.com";
  assertEquals(
    formatAddressList(list),
    'Bob <bob@example.com>,\n\tg: carol@example.com;,\n\t"x y"@example.com (c)',
  );
});

Deno.test("isDotString() rejects leading, trailing and doubled dots and specials", () => {
  assertEquals(isDotString("a.b"), true);
  assertEquals(isDotString(".a"), false);
  assertEquals(isDotString("a."), false);
  assertEquals(isDotString("a..b"), false);
  assertEquals(isDotString("a b"), false);
  assertEquals(isDotString("a@b"), false);
  assertEquals(isDotString(""), false);
  assertEquals(isDotString("üser"), true);
});

Deno.test("quoteAddress() quotes the local part only when it needs it", () => {
  assertEquals(quoteAddress("user@example.com"), "user@example.com");
  assertEquals(quoteAddress("john doe@example.com"), '"john doe"@example.com');
  assertEquals(quoteAddress('a"b\\c@example.com'), '"a\\"b\\\\c"@example.com');
  assertEquals(quoteAddress("a@b@example.com"), '"a@b"@example.com');
  assertEquals(quoteAddress("@example.com"), '""@example.com');
  assertEquals(quoteAddress(".dot@example.com"), '".dot"@example.com');
  assertEquals(quoteAddress(""), "");
  assertEquals(quoteAddress("lone user"), '"lone user"');
});

Deno.test("unquoteAddress() undoes quoteAddress()", () => {
  for (const addr of ["user@x", "john doe@x", 'a"b\\c@x', "a@b@x", "@x", "plain"]) {
    assertEquals(unquoteAddress(quoteAddress(addr)), addr);
  }
  assertEquals(unquoteAddress('"a"."b"@x'), "a.b@x");
  assertEquals(unquoteAddress("a\\ b@x"), "a b@x");
});

Deno.test("splitAddress() splits at the last @", () => {
  assertEquals(splitAddress("a@b@c"), { local: "a@b", domain: "c", hasAt: true });
  assertEquals(splitAddress("user"), { local: "user", domain: "", hasAt: false });
});

const rules: RewriteRules = {
  myorigin: "host.example.com",
  mydomain: "example.com",
  appendAtMyorigin: true,
  appendDotMydomain: true,
  swapBangpath: true,
  allowPercentHack: true,
};

Deno.test("rewriteAddress() appends @myorigin and .mydomain", () => {
  assertEquals(rewriteAddress("bob", rules), "bob@host.example.com");
  assertEquals(rewriteAddress("bob@host", rules), "bob@host.example.com");
  assertEquals(rewriteAddress("bob@a.b", rules), "bob@a.b");
  assertEquals(rewriteAddress("bob@[10.0.0.1]", rules), "bob@[10.0.0.1]");
  assertEquals(rewriteAddress("bob@host", { ...rules, appendDotMydomain: false }), "bob@host");
  assertEquals(rewriteAddress("bob", { ...rules, appendAtMyorigin: false }), "bob");
});

Deno.test("rewriteAddress() swaps bang paths, applies the percent hack, strips routes and a trailing dot", () => {
  assertEquals(rewriteAddress("site.org!user", rules), "user@site.org");
  assertEquals(rewriteAddress("user%dom.org", rules), "user@dom.org");
  assertEquals(
    rewriteAddress("user%dom.org", { ...rules, allowPercentHack: false }),
    "user%dom.org@host.example.com",
  );
  assertEquals(rewriteAddress("@r1,@r2:user@x.org", rules), "user@x.org");
  assertEquals(rewriteAddress("user@", rules), "user@");
  assertEquals(rewriteAddress("user@example.org.", rules), "user@example.org");
  assertEquals(rewriteAddress("", rules), "");
});

Deno.test("parseAddressList() splits words and angle addresses as tok822 does", () => {
  assertEquals(extractAddresses("foo bar"), ["foo", "bar"]);
  assertEquals(extractAddresses("x <y> z"), ["y", "z"]);
  assertEquals(extractAddresses('"a b" c <d>'), ["d"]);
  assertEquals(extractAddresses("a.b."), ["a.b."]);
  assertEquals(extractAddresses("(only a comment)"), []);
});

Deno.test("formatAddressList() prints as tok822: phrase tokens re-joined, comments in place, empty elements kept", () => {
  const show = (v: string) => formatAddressList(parseAddressList(v), false);
  assertEquals(show("John Q. Public <jqp>"), "John Q.Public <jqp>");
  assertEquals(show("joe (comment) <j1>"), "joe (comment) <j1>");
  assertEquals(show("a1, , a2"), "a1, , a2");
  assertEquals(show("Group: g1, g2; g3"), "Group: g1, g2;, g3");
  assertEquals(show("x <y> z"), "x <y>, z");
  assertEquals(show("<@r1,@r2:u@x>"), "<u@x>");
  assertEquals(show("u@[192.0.2.1] (c1) (c2)"), "u@[192.0.2.1] (c1) (c2)");
  assertEquals(show("undisclosed-recipients:;"), "undisclosed-recipients:;");
});
