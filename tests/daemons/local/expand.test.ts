// Unit tests of local(8)'s expansions: forward_path-style $name expansion
// with the character filter, the alias value syntax, address splitting and
// the duplicate filter.

import { assertEquals, assertThrows } from "../../assert.ts";
import { localExpand, MacroError, parseTokens, splitValue } from "../../../daemons/local/expand.ts";
import { addressParts } from "../../../daemons/local/recipient.ts";
import { DupFilter } from "../../../daemons/local/state.ts";

const filter = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

Deno.test("localExpand() gives the default forward_path with and without an extension", () => {
  const path = "$home/.forward${recipient_delimiter}${extension}, $home/.forward";
  const attrs = { home: "/home/u", extension: "", recipient_delimiter: "" };
  assertEquals(localExpand(path, attrs, filter), "/home/u/.forward, /home/u/.forward");
  assertEquals(
    localExpand(path, { ...attrs, extension: "lists", recipient_delimiter: "+" }, filter),
    "/home/u/.forward+lists, /home/u/.forward",
  );
});

Deno.test("localExpand() filters shell and path characters out of values", () => {
  assertEquals(
    localExpand("/x/$extension/$user", { extension: "a;b`c$d e", user: "u" }, filter),
    "/x/a_b_c_d_e/u",
  );
});

Deno.test("localExpand() does the conditional forms and leaves main.cf names alone", () => {
  const attrs = { extension: "x", user: "u" };
  assertEquals(localExpand("${extension?{+$extension}}${domain:{none}}", attrs, filter), "+xnone");
  assertEquals(localExpand("${extension?{a}:{b}}", { user: "u" }, filter), "b");
  assertEquals(localExpand("[$myhostname]", attrs, filter), "[]");
  assertThrows(() => localExpand("${user", attrs, filter), MacroError);
});

Deno.test("parseTokens() tells commands, files, includes and addresses apart", () => {
  assertEquals(
    parseTokens(
      `alice, "|/usr/bin/procmail -a x", /var/spool/archive, :include:/etc/list,` +
        ` Bob <bob@example.com>, "john smith"@example.com, \\carol (comment), "/file with space"`,
    ),
    [
      { kind: "address", address: "alice" },
      { kind: "command", command: "/usr/bin/procmail -a x" },
      { kind: "file", path: "/var/spool/archive" },
      { kind: "include", path: "/etc/list" },
      { kind: "address", address: "bob@example.com" },
      { kind: "address", address: "john smith@example.com" },
      { kind: "address", address: "carol" },
      { kind: "file", path: "/file with space" },
    ],
  );
});

Deno.test("splitValue() keeps commas inside quotes and angle brackets", () => {
  assertEquals(splitValue(`a, "|x, y", <b,c@d>, e`), ["a", `"|x, y"`, "<b,c@d>", "e"]);
});

Deno.test("addressParts() folds case and splits the extension off", () => {
  assertEquals(addressParts("Alice+Lists@Example.COM", "+"), {
    local: "alice+lists",
    user: "alice",
    extension: "lists",
    delimiter: "+",
    domain: "Example.COM",
  });
  // owner-list and list-request are not split at "-" (owner_request_special).
  assertEquals(addressParts("owner-list@x", "-").user, "owner-list");
  assertEquals(addressParts("owner-list@x", "-", false).user, "owner");
  assertEquals(addressParts("bob@x", "").extension, "");
});

Deno.test("DupFilter remembers up to duplicate_filter_limit entries", () => {
  const dup = new DupFilter(2);
  assertEquals([dup.beenHere("a"), dup.beenHere("b"), dup.beenHere("a")], [false, false, true]);
  // Full: "c" is not remembered, so it is never a duplicate.
  assertEquals([dup.beenHere("c"), dup.beenHere("c")], [false, false]);
  const unlimited = new DupFilter(0);
  assertEquals([unlimited.beenHere("x"), unlimited.beenHere("x")], [false, true]);
});
