// The launcher whole-instance tests name in posthorn_launcher: runs the
// program named by the first argument through mod.ts, as the installed
// binary would under that name, so the master can start every daemon from
// source.

import { run } from "../mod.ts";

Deno.exit(await run("posthorn", Deno.args));
