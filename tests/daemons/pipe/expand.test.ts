// pipe(8)'s argv= macros: each ${macro}, the per-recipient expansion, and
// the h, q and u flags (expected values as the reference's pipe gave them).

import { assertEquals, assertThrows } from "../../assert.ts";
import {
  expandArgv,
  type MacroSource,
  PipeMacroError,
  splitExtension,
} from "../../../daemons/pipe/expand.ts";

function source(over: Partial<MacroSource> = {}): MacroSource {
  return {
    flags: new Set(),
    sender: "sender@x.example",
    nullSender: "MAILER-DAEMON",
    nexthop: "NH.Example",
    size: 276,
    queueId: "609032180A1",
    attrs: {
      log_client_address: "192.0.2.7",
      log_client_name: "client.example",
      log_helo_name: "helo.example",
      log_client_port: "54321",
      log_protocol_name: "ESMTP",
      sasl_method: "PLAIN",
      sasl_username: "joe",
      sasl_sender: "joe@x.example",
    },
    delimiters: "+",
    ...over,
  };
}

const one = [{ address: "User+ext@T1.Test", origRcpt: "Orig@T1.Test" }];

Deno.test("expandArgv() replaces every request macro", () => {
  const argv = [
    "${sender}",
    "${nexthop}",
    "${size}",
    "${queue_id}",
    "${client_address}",
    "${client_hostname}",
    "${client_helo}",
    "${client_port}",
    "${client_protocol}",
    "${sasl_method}",
    "${sasl_username}",
    "${sasl_sender}",
  ];
  assertEquals(expandArgv(argv, source(), one), [
    "sender@x.example",
    "NH.Example",
    "276",
    "609032180A1",
    "192.0.2.7",
    "client.example",
    "helo.example",
    "54321",
    "ESMTP",
    "PLAIN",
    "joe",
    "joe@x.example",
  ]);
});

Deno.test("expandArgv() replaces every recipient macro", () => {
  const argv = [
    "${recipient}",
    "${original_recipient}",
    "${user}",
    "${extension}",
    "${mailbox}",
    "${domain}",
  ];
  assertEquals(expandArgv(argv, source(), one), [
    "User+ext@T1.Test",
    "Orig@T1.Test",
    "User",
    "ext",
    "User+ext",
    "T1.Test",
  ]);
});

Deno.test("expandArgv() knows $name, $(name), $$ and the conditional forms", () => {
  assertEquals(
    expandArgv(
      ["x$(sender)y", "$size$$", "-f$sender", "${extension?+}${extension}", "${sasl_sender:none}"],
      source(),
      one,
    ),
    ["xsender@x.example" + "y", "276$", "-fsender@x.example", "+ext", ""],
  );
  const noExt = [{ address: "plain@x", origRcpt: "" }];
  assertEquals(
    expandArgv(
      ["${extension?+}${extension}", "${client_address:{none}}"],
      source({ attrs: {} }),
      noExt,
    ),
    [
      "",
      "none",
    ],
  );
});

Deno.test("expandArgv() repeats an argument with a recipient macro once per recipient", () => {
  const rcpts = [{ address: "a@t2.test", origRcpt: "" }, { address: "c@t2.test", origRcpt: "" }];
  // The reference: "{a ${recipient} b} ${recipient}${domain}" for a and b.
  assertEquals(
    expandArgv(
      ["cmd", "${sender}", "a ${recipient} b", "${recipient}${domain}", "${user}"],
      source(),
      rcpts,
    ),
    [
      "cmd",
      "sender@x.example",
      "a a@t2.test b",
      "a c@t2.test b",
      "a@t2.testt2.test",
      "c@t2.testt2.test",
      "a",
      "c",
    ],
  );
});

Deno.test("expandArgv() h folds domains and the next hop, u folds local parts", () => {
  const argv = [
    "${recipient}",
    "${original_recipient}",
    "${nexthop}",
    "${domain}",
    "${user}",
    "${mailbox}",
  ];
  assertEquals(expandArgv(argv, source({ flags: new Set(["h"]) }), one), [
    "User+ext@t1.test",
    "Orig@t1.test",
    "nh.example",
    "t1.test",
    "User",
    "User+ext",
  ]);
  assertEquals(expandArgv(argv, source({ flags: new Set(["u"]) }), one), [
    "user+ext@T1.Test",
    "orig@T1.Test",
    "NH.Example",
    "T1.Test",
    "user",
    "user+ext",
  ]);
});

Deno.test("expandArgv() q quotes the sender and recipients' local parts, not $user", () => {
  const rcpts = [{ address: "b c@t22.test", origRcpt: "" }];
  const src = source({ flags: new Set(["q"]), sender: "s p@x.example" });
  assertEquals(
    expandArgv(["${sender}", "${recipient}", "${original_recipient}", "${user}"], src, rcpts),
    [
      '"s p"@x.example',
      '"b c"@t22.test',
      '"b c"@t22.test',
      "b c",
    ],
  );
});

Deno.test("expandArgv() gives the null sender as null_sender", () => {
  assertEquals(expandArgv(["${sender}"], source({ sender: "" }), one), ["MAILER-DAEMON"]);
  assertEquals(expandArgv(["${sender}"], source({ sender: "", nullSender: "" }), one), [""]);
  assertEquals(
    expandArgv(
      ["${sender}"],
      source({ sender: "", nullSender: "a b", flags: new Set(["q"]) }),
      one,
    ),
    ['"a b"'],
  );
});

Deno.test("expandArgv() takes no value apart twice: a $ in an address stays", () => {
  const rcpts = [{ address: "$sender@x", origRcpt: "" }];
  assertEquals(expandArgv(["${recipient}"], source(), rcpts), ["$sender@x"]);
});

Deno.test("expandArgv() refuses an unknown macro and a truncated reference", () => {
  assertThrows(
    () => expandArgv(["${bogus}"], source(), one),
    PipeMacroError,
    'unknown macro name: "bogus"',
  );
  assertThrows(
    () => expandArgv(["${sender"], source(), one),
    PipeMacroError,
    'truncated macro reference: "${sender"',
  );
});

Deno.test("splitExtension() splits at the first delimiter, never at the first character", () => {
  assertEquals(splitExtension("user+foo+bar", "+"), { user: "user", extension: "foo+bar" });
  assertEquals(splitExtension("user-foo", "+-"), { user: "user", extension: "foo" });
  assertEquals(splitExtension("+e", "+"), { user: "+e", extension: "" });
  assertEquals(splitExtension("user+foo", ""), { user: "user+foo", extension: "" });
});
