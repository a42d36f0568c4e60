// Regenerates tests/golden/trivial_rewrite/*.ref from the reference
// trivial-rewrite(8): `deno run -A tests/daemons/trivial_rewrite/make_golden.ts [NAME...]`.

import { caseNames, formatAnswer, GOLDEN_DIR, readCases } from "./cases.ts";
import { haveReference, referenceReplies } from "./reference.ts";

if (!haveReference()) {
  console.error("make_golden: the reference trivial-rewrite is not installed");
  Deno.exit(1);
}
for (const name of Deno.args.length ? Deno.args : caseNames()) {
  const cases = readCases(name);
  const replies = await referenceReplies(
    cases.mainCf,
    cases.files,
    cases.queries.map((q) => ({
      ...(q.request === "rewrite"
        ? { request: q.request, rule: q.second, address: q.address }
        : { request: q.request, sender: q.second, address: q.address }),
    })),
  );
  const lines = cases.queries.map((q, i) => formatAnswer(q, replies[i]));
  Deno.writeTextFileSync(`${GOLDEN_DIR}${name}.ref`, lines.join("\n") + "\n");
  console.log(`${name}: ${lines.length} answers`);
}
