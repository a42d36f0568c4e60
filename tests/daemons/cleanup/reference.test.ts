// The cleanup core against the reference Postfix on the cases of
// tests/golden/cleanup/cases.ts (made by tests/golden/cleanup/make_refs.ts):
// the same maildrop file, with the Received header pickup adds, must give
// the reference's queue file byte for byte and its cleanup log lines.
// Not compared: the bounce that the reference's cleanup sends for a
// rejected message (no bounce service yet) and its qmgr wake-up warning
// (a service-level line).

import { assertEquals } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { type InputRecord, processMessage } from "../../../daemons/cleanup/core.ts";
import { CleanupFlag, defaultFlags, settingsFrom } from "../../../daemons/cleanup/settings.ts";
import { openCleanupTables } from "../../../daemons/cleanup/tables.ts";
import { cases, mainCf, tables } from "../../golden/cleanup/cases.ts";
import { rec } from "./helpers.ts";

const golden = new URL("../../golden/cleanup/", import.meta.url).pathname;
const dec = new TextDecoder();

function readOptional(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch {
    return null;
  }
}

/** The maildrop records with pickup's Received header after M. */
function pickupStream(maildrop: Uint8Array, id: string, date: string): InputRecord[] {
  const out: InputRecord[] = [];
  for (const r of decodeRecords(maildrop)) {
    out.push({ type: r.type, data: r.data });
    if (r.type === "M") {
      out.push(rec("N", "Received: by ref.example.com (Postfix, from userid 0)"));
      out.push(rec("N", `\tid ${id}; ${date}`));
    }
  }
  return out;
}

/** The reference's cleanup lines that Posthorn's core is expected to produce. */
function referenceLog(name: string): string[] {
  const lines = Deno.readTextFileSync(`${golden}${name}.log`).split("\n");
  // What follows the first bounce line is the bounce's own work.
  const bounce = lines.findIndex((l) => /status=bounced/.test(l));
  return lines.slice(0, bounce < 0 ? lines.length : bounce)
    .filter((l) => l.startsWith("cleanup: "))
    .map((l) => l.slice("cleanup: ".length))
    .filter((l) => !l.includes("unable to look up public/qmgr") && !l.includes("regexp map"))
    .map((l) => l.replace(/<\d{14}\.QUEUEID@/, "<STAMP.QUEUEID@"));
}

/** The configuration and tables of a case; the table files are read at open and then removed. */
function caseSetup(cf = "") {
  const dir = Deno.makeTempDirSync({ prefix: "cleanup-ref-" });
  try {
    for (const [name, text] of Object.entries(tables)) {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
    }
    const config = configFromText(dir, mainCf.replaceAll("DIR", dir) + cf + "\n");
    return { settings: settingsFrom(config), tables: openCleanupTables(config) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const base = caseSetup();

for (const c of cases) {
  Deno.test(`cleanup core matches the reference on the "${c.name}" case`, async () => {
    const expected = readOptional(`${golden}${c.name}.incoming`) ??
      readOptional(`${golden}${c.name}.hold`);
    const text = expected ? dec.decode(expected) : "";
    // pickup's Received line: "\tid ID; DATE" (the tab may have been stripped).
    const received = /id (\w+); ([A-Z][a-z]{2}, [ 0-9]{2} [^(]*\([A-Z]+\))/.exec(text);
    const id = received?.[1] ?? "QUEUEID";
    const date = received?.[2] ?? "Tue, 24 Nov 2026 15:47:10 +0000 (UTC)";
    const created = /create_time=(\d+)/.exec(text)?.[1];
    const { settings, tables: cleanupTables } = c.cf ? caseSetup(c.cf) : base;
    const log: string[] = [];
    const result = await processMessage(
      pickupStream(Deno.readFileSync(`${golden}${c.name}.maildrop`), id, date),
      {
        queueId: id,
        // pickup asks for SMTPUTF8 autodetection (the "sendmail" class).
        flags: defaultFlags | CleanupFlag.AUTOUTF8,
        settings,
        tables: cleanupTables,
        now: created ? new Date(Number(created) * 1000) : new Date(),
        log: { info: (t) => log.push(t), warn: (t) => log.push(`warning: ${t}`) },
      },
    );
    const ours = log.map((l) =>
      l.replaceAll(id, "QUEUEID").replace(/<\d{14}\.QUEUEID@/, "<STAMP.QUEUEID@")
    );
    assertEquals(ours, referenceLog(c.name));
    if (!expected) {
      assertEquals(result.file, null);
      return;
    }
    const show = (b: Uint8Array) => decodeRecords(b).map((r) => `${r.type} ${dec.decode(r.data)}`);
    assertEquals(show(result.file!), show(expected));
    assertEquals(result.file, expected);
    assertEquals(result.queue, readOptional(`${golden}${c.name}.hold`) ? "hold" : "incoming");
  });
}
