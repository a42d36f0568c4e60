// Resolution and rewriting answers, in process, compared with the golden
// files made from the reference trivial-rewrite(8) (make_golden.ts).

import { assert, assertEquals } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { AttrReader } from "../../../lib/ipc/attr.ts";
import { captureLog } from "../../../lib/log.ts";
import { answer } from "../../../daemons/trivial_rewrite/service.ts";
import { settingsFrom } from "../../../daemons/trivial_rewrite/settings.ts";
import { caseNames, formatAnswer, GOLDEN_DIR, readCases, requestOf } from "./cases.ts";

/** Answers every query of NAME.cases in process; returns the answer lines and the log. */
export async function answerCases(name: string): Promise<{ lines: string[]; log: string[] }> {
  const cases = readCases(name);
  const dir = await Deno.makeTempDir({ prefix: "tr-golden-" });
  try {
    for (const [file, text] of Object.entries(cases.files)) {
      await Deno.writeTextFile(`${dir}/${file}`, text.replaceAll("$dir", dir));
    }
    const config = configFromText(dir, cases.mainCf.replaceAll("$dir", dir));
    const log: string[] = [];
    captureLog((line) => log.push(line.replaceAll(dir, "$dir")));
    const settings = await settingsFrom(config);
    const lines: string[] = [];
    for (const q of cases.queries) {
      const outcome = await answer(settings, new Map(Object.entries(requestOf(q))), "test");
      if (!("reply" in outcome)) throw new Error(`${q.line}: ${outcome.drop}`);
      lines.push(formatAnswer(q, new AttrReader().push(outcome.reply)[0]));
    }
    return { lines, log };
  } finally {
    captureLog(undefined);
    await Deno.remove(dir, { recursive: true });
  }
}

for (const name of caseNames()) {
  Deno.test(`trivial-rewrite answers ${name}.cases as the reference does`, async () => {
    const expected = Deno.readTextFileSync(`${GOLDEN_DIR}${name}.ref`).trimEnd().split("\n");
    const { lines, log } = await answerCases(name);
    assertEquals(lines, expected);
    // The warnings too (the reference's, sorted, in NAME.log when it logged any).
    if (!readCases(name).logSubset) {
      assertEquals(log.sort(), readLog(name));
    } else {
      const theirs = new Set(readLog(name));
      assertEquals(log.filter((line) => !theirs.has(line)), [], "lines the reference never logged");
      assert(log.length > 0);
    }
  });
}

function readLog(name: string): string[] {
  try {
    return Deno.readTextFileSync(`${GOLDEN_DIR}${name}.log`).trimEnd().split("\n").sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}
