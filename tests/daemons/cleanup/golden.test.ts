// The core against the reference: maildrop files the reference's postdrop
// wrote, run through cleanup with the pickup's Received header, must give
// the queue files the reference's cleanup wrote (tests/golden/queue/*.hold),
// byte for byte.

import { assertEquals } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { type InputRecord, processMessage } from "../../../daemons/cleanup/core.ts";
import { CleanupFlag, defaultFlags, settingsFrom } from "../../../daemons/cleanup/settings.ts";
import { rec } from "./helpers.ts";

const golden = new URL("../../golden/queue/", import.meta.url).pathname;
const dec = new TextDecoder();

/** The maildrop records with the Received header pickup adds after M. */
function pickupStream(maildrop: Uint8Array, id: string): InputRecord[] {
  const out: InputRecord[] = [];
  for (const r of decodeRecords(maildrop)) {
    out.push({ type: r.type, data: r.data });
    if (r.type === "M") {
      out.push(rec("N", "Received: by ref.example.com (Postfix, from userid 0)"));
      out.push(rec("N", `\tid ${id}; Tue, 24 Nov 2026 15:24:19 +0000 (UTC)`));
    }
  }
  return out;
}

function describe(buf: Uint8Array): string[] {
  return decodeRecords(buf).map((r) => `${r.type} ${dec.decode(r.data)}`);
}

const cases: [string, string][] = [
  ["simple", "hold"],
  ["tflag", "hold"],
  ["dsn8bit", "hold"],
  ["longline", "hold"],
  ["noheaders", "incoming"],
];

for (const [name, queue] of cases) {
  Deno.test(`cleanup core turns the reference's ${name} maildrop file into the reference's queue file`, async () => {
    const expected = Deno.readFileSync(`${golden}${name}.${queue}`);
    const id = /id ([0-9A-F]+);/.exec(dec.decode(expected))![1];
    const config = configFromText(
      "/nonexistent",
      "myhostname = ref.example.com\nmydomain = example.com\nmyorigin = example.com\ncompatibility_level = 3.6\n",
    );
    const result = await processMessage(
      pickupStream(Deno.readFileSync(`${golden}${name}.maildrop`), id),
      {
        queueId: id,
        // pickup asks for SMTPUTF8 autodetection (the "sendmail" class).
        flags: defaultFlags | CleanupFlag.AUTOUTF8,
        settings: settingsFrom(config),
        tables: {},
        now: new Date(1795533892 * 1000),
        log: { info: () => {}, warn: () => {} },
      },
    );
    assertEquals(result.status, 0);
    assertEquals(describe(result.file!), describe(expected));
    assertEquals(result.file, expected);
  });
}
