// DSN status helpers.

import { assert, assertEquals } from "../../assert.ts";
import { DsnNotify, isDsnCode, splitDsnText, wantsNotice } from "../../../lib/dsn/status.ts";

Deno.test("splitDsnText() takes a leading detail code, else the default", () => {
  assertEquals(splitDsnText("5.1.1 no such user", "5.0.0"), {
    code: "5.1.1",
    text: "no such user",
  });
  assertEquals(splitDsnText("mail is not accepted", "4.0.0"), {
    code: "4.0.0",
    text: "mail is not accepted",
  });
  assertEquals(splitDsnText("5.1.1x text", "5.0.0"), { code: "5.0.0", text: "5.1.1x text" });
  assertEquals(splitDsnText("4.7.1", "5.0.0"), { code: "4.7.1", text: "" });
});

Deno.test("isDsnCode() accepts X.Y.Z with class 2, 4 or 5", () => {
  assert(isDsnCode("2.0.0"));
  assert(isDsnCode("5.123.999"));
  assert(!isDsnCode("3.0.0"));
  assert(!isDsnCode("5.0"));
});

Deno.test("wantsNotice() follows NOTIFY, with failure and delay when unspecified", () => {
  assert(wantsNotice(0, "failure"));
  assert(wantsNotice(0, "delay"));
  assert(!wantsNotice(0, "success"));
  assert(wantsNotice(DsnNotify.SUCCESS, "success"));
  assert(!wantsNotice(DsnNotify.SUCCESS, "failure"));
  assert(!wantsNotice(DsnNotify.NEVER, "failure"));
  assert(wantsNotice(DsnNotify.FAILURE | DsnNotify.DELAY, "delay"));
});
