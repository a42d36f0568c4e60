// Regenerates tests/golden/trivial_rewrite/*.ref from the reference
// trivial-rewrite(8): `deno run -A tests/daemons/trivial_rewrite/make_golden.ts [NAME...]`.

import { caseNames, formatAnswer, GOLDEN_DIR, readCases } from "./cases.ts";
import { haveReference, referenceReplies } from "./reference.ts";

if (!haveReference()) {
  console.error("make_golden: the reference trivial-rewrite is not installed");
  Deno.exit(1);
}
// Where a syslog listener on /dev/log writes what it receives, if one runs:
// the reference's warnings are then kept as NAME.log (sorted).
const syslog = Deno.env.get("TR_REFERENCE_SYSLOG");
let logStart = syslog ? Deno.readTextFileSync(syslog).length : 0;
for (const name of Deno.args.length ? Deno.args : caseNames()) {
  const cases = readCases(name);
  const pids: number[] = [];
  const replies = await referenceReplies(
    cases.mainCf,
    cases.files,
    cases.queries.map((q) => ({
      ...(q.request === "rewrite"
        ? { request: q.request, rule: q.second, address: q.address }
        : { request: q.request, sender: q.second, address: q.address }),
    })),
    pids,
  );
  const lines = cases.queries.map((q, i) => formatAnswer(q, replies[i]));
  Deno.writeTextFileSync(`${GOLDEN_DIR}${name}.ref`, lines.join("\n") + "\n");
  if (syslog) {
    await new Promise((r) => setTimeout(r, 500));
    const logged = Deno.readTextFileSync(syslog).slice(logStart);
    // Only what this run's processes logged (other instances may share the log).
    const ours = new Set(pids.map((p) => `/trivial-rewrite[${p}]:`));
    const warnings = logged.split("\n").filter((l) => [...ours].some((tag) => l.includes(tag)))
      .map((l) =>
        l.replace(/^.*?trivial-rewrite\[\d+\]: /, "").replace(/\/tmp\/tr-ref-[^/]+/g, "$dir")
      )
      .sort();
    const logFile = `${GOLDEN_DIR}${name}.log`;
    if (warnings.length) Deno.writeTextFileSync(logFile, warnings.join("\n") + "\n");
    else if (existsFile(logFile)) Deno.removeSync(logFile);
    logStart = Deno.readTextFileSync(syslog).length;
  }
  console.log(`${name}: ${lines.length} answers`);
}

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
