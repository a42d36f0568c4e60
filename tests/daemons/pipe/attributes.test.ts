// pipe(8)'s master.cf attributes: what is accepted, and every refusal
// with the reference's fatal wording (checked against Postfix 3.7's pipe).

import { assertEquals, assertThrows } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { captureLog, FatalError } from "../../../lib/log.ts";
import { groupId, parsePipeAttributes, unescape } from "../../../daemons/pipe/attributes.ts";

// mail_owner and setgid_group as a test chooses them; nobody is on every system.
function config(main = "mail_owner = no-such-owner\nsetgid_group = no-such-group\n") {
  return configFromText("/etc/posthorn-test", main);
}

/** The fatal message parsing `operands` gives. */
function fatalOf(operands: string[], main?: string): string {
  const lines: string[] = [];
  captureLog((l) => lines.push(l));
  try {
    assertThrows(() => parsePipeAttributes(operands, config(main)), FatalError);
  } finally {
    captureLog(undefined);
  }
  const line = lines.find((l) => l.includes("fatal: ")) ?? "";
  return line.slice(line.indexOf("fatal: ") + 7);
}

Deno.test("parsePipeAttributes() reads flags, user, size, eol, directory, chroot, null_sender and argv", () => {
  const a = parsePipeAttributes(
    [
      "flags=BDFORXhqu.>",
      "user=nobody",
      "size=1000",
      "eol=\\r\\n",
      "directory=/tmp",
      "chroot=/srv/jail",
      "null_sender=",
      "argv=/usr/bin/cmd",
      "-f",
      "${sender}",
      "--",
      "${recipient}",
    ],
    config(),
  );
  assertEquals([...a.flags].join(""), "BDFORXhqu.>");
  assertEquals(a.user, "nobody");
  assertEquals(a.uid, 65534);
  assertEquals([a.sizeLimit, a.eol, a.directory, a.chroot, a.nullSender], [
    1000,
    "\r\n",
    "/tmp",
    "/srv/jail",
    "",
  ]);
  assertEquals(a.argv, ["/usr/bin/cmd", "-f", "${sender}", "--", "${recipient}"]);
});

Deno.test("parsePipeAttributes() defaults: no flags, no limit, newline, MAILER-DAEMON", () => {
  const a = parsePipeAttributes(["user=nobody", "argv=/bin/cat"], config());
  assertEquals([a.flags.size, a.sizeLimit, a.eol, a.directory, a.nullSender], [
    0,
    0,
    "\n",
    "",
    "MAILER-DAEMON",
  ]);
});

Deno.test("parsePipeAttributes() takes user=name:group's group id", () => {
  const gid = groupId("nogroup") ?? groupId("nobody");
  const name = groupId("nogroup") !== undefined ? "nogroup" : "nobody";
  const a = parsePipeAttributes([`user=nobody:${name}`, "argv=/bin/cat"], config());
  assertEquals(a.gid, gid);
});

Deno.test("pipe refuses a missing user= or argv= as the reference does", () => {
  assertEquals(fatalOf(["argv=/bin/cat"]), "missing user= command-line attribute");
  assertEquals(fatalOf(["user=nobody"]), "missing argv= command-line attribute");
});

Deno.test("pipe refuses root, the mail owner and the mail system's groups", () => {
  assertEquals(
    fatalOf(["user=root", "argv=/bin/cat"]),
    "user= command-line attribute specifies root privileges",
  );
  assertEquals(
    fatalOf(["user=nobody", "argv=/bin/cat"], "mail_owner = nobody\n"),
    "user= command-line attribute specifies mail system owner nobody",
  );
  assertEquals(
    fatalOf(["user=nobody:root", "argv=/bin/cat"]),
    "user= command-line attribute specifies privileged group id 0",
  );
  const group = groupId("nogroup") !== undefined ? "nogroup" : "nobody";
  const gid = groupId(group);
  assertEquals(
    fatalOf([`user=nobody:${group}`, "argv=/bin/cat"], `setgid_group = ${group}\n`),
    `user= command-line attribute specifies mail system ${group} group id ${gid}`,
  );
});

Deno.test("pipe refuses unknown users, groups, flags, attributes and bad sizes", () => {
  assertEquals(
    fatalOf(["user=no-such-user-x", "argv=/bin/cat"]),
    "get_service_attr: unknown username: no-such-user-x",
  );
  assertEquals(
    fatalOf(["user=nobody:no-such-group-x", "argv=/bin/cat"]),
    "get_service_attr: unknown group: no-such-group-x",
  );
  assertEquals(fatalOf(["flags=Z", "user=nobody", "argv=/bin/cat"]), "unknown flag: Z (ignored)");
  assertEquals(
    fatalOf(["user=nobody", "bogus=1", "argv=/bin/cat"]),
    "unknown attribute name: bogus=1",
  );
  assertEquals(
    fatalOf(["user=nobody", "size=abc", "argv=/bin/cat"]),
    "get_service_attr: bad size= value: abc",
  );
  assertEquals(
    fatalOf(["user=nobody", "size=-5", "argv=/bin/cat"]),
    "get_service_attr: bad size= value: -5",
  );
});

Deno.test("unescape() resolves eol='s C escapes; an unknown escape is its character", () => {
  assertEquals(unescape("\\r\\n"), "\r\n");
  assertEquals(unescape("\\t\\a\\b\\f\\v\\\\"), "\t\x07\b\f\v\\");
  assertEquals(unescape("\\015\\12x"), "\r\nx");
  assertEquals(unescape("\\q"), "q");
});
