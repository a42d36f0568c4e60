// MAIL/RCPT argument parsing: addresses, source routes, quoting, xtext and
// the ESMTP parameters.

import { assertEquals } from "../../assert.ts";
import {
  decodeXtext,
  parseAddressArg,
  parseMailParams,
  parseRcptParams,
} from "../../../daemons/smtpd/params.ts";

Deno.test("parseAddressArg() takes bracketed and bare addresses and drops source routes", () => {
  assertEquals(parseAddressArg("FROM:<a@b> SIZE=1", "FROM"), {
    raw: "a@b",
    address: "a@b",
    params: ["SIZE=1"],
  });
  assertEquals(parseAddressArg("from: <a@b>", "FROM"), { raw: "a@b", address: "a@b", params: [] });
  assertEquals(parseAddressArg("TO:u@h", "TO"), { raw: "u@h", address: "u@h", params: [] });
  assertEquals((parseAddressArg("TO:<@x,@y:u@h>", "TO") as { address: string }).address, "u@h");
  assertEquals((parseAddressArg('TO:<"a b"@h>', "TO") as { address: string }).address, "a b@h");
  assertEquals(parseAddressArg("FROM:<>", "FROM"), { raw: "", address: "", params: [] });
  assertEquals(parseAddressArg("FROM:<a@b", "FROM"), "address");
  assertEquals(parseAddressArg("FROM:<a b@c>", "FROM"), "address");
  assertEquals(parseAddressArg("TO:<a@b>", "FROM"), "syntax");
});

Deno.test("parseMailParams() checks SIZE, BODY, RET, ENVID and SMTPUTF8", () => {
  assertEquals(
    parseMailParams(["SIZE=10", "BODY=8bitmime", "RET=hdrs", "ENVID=a+2Bb", "SMTPUTF8"], 100),
    {
      size: 10,
      body: "8BITMIME",
      ret: 2,
      envid: "a+b",
      smtputf8: true,
      verp: "",
    },
  );
  assertEquals(parseMailParams(["SIZE=1000"], 100), {
    code: 552,
    dsn: "5.3.4",
    text: "Message size exceeds fixed limit",
  });
  assertEquals((parseMailParams(["ENVID=a+zz"], 0) as { code: number }).code, 501);
});

Deno.test("parseRcptParams() checks NOTIFY and ORCPT", () => {
  assertEquals(parseRcptParams(["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;a+40b"]), {
    notify: 10,
    orcpt: "rfc822;a@b",
  });
  assertEquals((parseRcptParams(["NOTIFY=NEVER,DELAY"]) as { code: number }).code, 501);
  assertEquals((parseRcptParams(["XYZ=1"]) as { code: number }).code, 555);
  assertEquals(decodeXtext("a+2B"), "a+");
});

Deno.test("parseMailParams() takes XVERP from an authorized client only, checked as Postfix", () => {
  const opts = { allowed: true, defaults: "+=", filter: "-=+", nullSender: false };
  const ok = (params: string[]) => {
    const p = parseMailParams(params, 0, opts);
    return "verp" in p ? p.verp : p;
  };
  assertEquals(ok(["XVERP"]), "+=");
  assertEquals(ok(["XVERP=-="]), "-=");
  assertEquals(ok(["XVERP=ab"]), {
    code: 501,
    dsn: "5.5.4",
    text: "Error: XVERP needs two characters from -=+",
  });
  assertEquals(ok(["XVERP=+"]), {
    code: 501,
    dsn: "5.5.4",
    text: "Error: XVERP needs two characters from -=+",
  });
  assertEquals(parseMailParams(["XVERP"], 0, { ...opts, nullSender: true }), {
    code: 503,
    dsn: "5.5.4",
    text: "Error: XVERP requires non-null sender",
  });
  assertEquals(parseMailParams(["XVERP"], 0, { ...opts, allowed: false }), {
    code: 555,
    dsn: "5.5.4",
    text: "Unsupported option: XVERP",
  });
});
