// Routes qmgr chooses before the resolver's: a content filter (the L record
// cleanup writes for content_filter or a FILTER action; not for probes or
// sendmail -bv), a redirect (the > record of a REDIRECT action: the first
// recipient only, to the canonical redirect address), and the address as
// the resolver rewrote it.

import { assertEquals } from "../../assert.ts";
import { rec, run } from "../cleanup/helpers.ts";
import { makeQueue, recordingBounce, type TestQueue, withLog } from "./helpers.ts";
import { Qmgr, type Resolved } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import type { InputRecord } from "../../../daemons/cleanup/core.ts";
import type { DeliverRequest } from "../../../lib/deliver/request.ts";

let serial = 0;

async function queue(q: TestQueue, records: InputRecord[], mainCf = ""): Promise<void> {
  const r = await run(records, mainCf);
  const id = `C${(0x10000 + serial++).toString(16).toUpperCase()}`;
  Deno.writeFileSync(queueFilePath(q.layout, "incoming", id), r.file!, { mode: 0o700 });
}

function envelope(rcpts: string[], extra: InputRecord[] = [], extracted: InputRecord[] = []) {
  return [
    rec("T", "1795533859 386243"),
    rec("A", "rewrite_context=local"),
    ...extra,
    rec("S", "alice@example.com"),
    ...rcpts.map((r) => rec("R", r)),
    rec("M"),
    rec("N", "Subject: x"),
    rec("X"),
    ...extracted,
    rec("E"),
  ];
}

/** Runs a qmgr over the queue; the (transport, nexthop, recipients) of each request. */
async function routes(q: TestQueue, mainCf = ""): Promise<[string, string, string[]][]> {
  const seen: [string, string, string[]][] = [];
  const qmgr = new Qmgr({
    layout: q.layout,
    settings: qmgrSettings(configFromText(q.dir, "myhostname = mx.example.com\n" + mainCf)),
    resolve: (_s, address): Promise<Resolved> =>
      Promise.resolve({
        transport: "smtp",
        nexthop: address.slice(address.indexOf("@") + 1),
        recipient: address.replace(/^old-/, "new-"),
        flags: 0,
      }),
    canonicalize: (a) => Promise.resolve(a.includes("@") ? a : `${a}@example.com`),
    deliver: (transport: string, req: DeliverRequest) => {
      seen.push([transport, req.nexthop, req.recipients.map((r) => r.address)]);
      return Promise.resolve({
        status: 0,
        hopStatus: "",
        hopReason: "",
        results: new Map(req.recipients.map((r) => [r.offset, "sent" as const])),
        traced: false,
      });
    },
    bounce: recordingBounce(),
  });
  await withLog(async () => {
    await qmgr.start();
    await qmgr.idle();
  });
  qmgr.stop();
  return seen.sort();
}

Deno.test("content_filter sends the mail to the filter; its next hop defaults to the recipient domain", async () => {
  const q = await makeQueue();
  await queue(q, envelope(["bob@b.example"]), "content_filter = scan:[127.0.0.1]:10025\n");
  await queue(q, envelope(["carol@c.example"]), "content_filter = scan:\n");
  assertEquals(await routes(q), [
    ["scan", "[127.0.0.1]:10025", ["bob@b.example"]],
    ["scan", "c.example", ["carol@c.example"]],
  ]);
});

Deno.test("default_filter_nexthop is the next hop of a filter without one", async () => {
  const q = await makeQueue();
  await queue(q, envelope(["bob@b.example"]), "content_filter = scan\n");
  assertEquals(await routes(q, "default_filter_nexthop = filter.example\n"), [
    ["scan", "filter.example", ["bob@b.example"]],
  ]);
});

Deno.test("probes and sendmail -bv messages are not filtered", async () => {
  const q = await makeQueue();
  await queue(
    q,
    envelope(["bob@b.example"], [rec("A", "trace_flags=512")]),
    "content_filter = scan:[127.0.0.1]:10025\n",
  );
  assertEquals(await routes(q), [["smtp", "b.example", ["bob@b.example"]]]);
});

Deno.test("a redirect takes the first recipient to the canonical redirect address", async () => {
  const q = await makeQueue();
  await queue(q, envelope(["bob@b.example", "carol@c.example"], [], [rec(">", "trap")]));
  assertEquals(await routes(q), [["smtp", "example.com", ["trap@example.com"]]]);
});

Deno.test("the resolver's rewritten address is the one delivered to", async () => {
  const q = await makeQueue();
  await queue(q, envelope(["old-bob@b.example"]));
  assertEquals(await routes(q), [["smtp", "b.example", ["new-bob@b.example"]]]);
});
