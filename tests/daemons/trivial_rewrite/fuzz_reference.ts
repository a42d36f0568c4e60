// Differential check against the reference trivial-rewrite(8): random
// addresses made of address-ish pieces (routing operators, dots, literals,
// local and remote names) asked of both, disagreements printed. A tool,
// not a test: `deno run -A tests/daemons/trivial_rewrite/fuzz_reference.ts
// [SEED] [COUNT] [garbage]` ("garbage" adds quotes, brackets, comments and
// other specials).

import { configFromText } from "../../../lib/config/mod.ts";
import { AttrReader } from "../../../lib/ipc/attr.ts";
import { captureLog } from "../../../lib/log.ts";
import { answer } from "../../../daemons/trivial_rewrite/service.ts";
import { settingsFrom } from "../../../daemons/trivial_rewrite/settings.ts";
import { BASE_MAIN_CF } from "./cases.ts";
import { haveReference, referenceReplies } from "./reference.ts";

const PIECES = [
  "a",
  "b",
  "user",
  "@",
  "@",
  "%",
  "!",
  ".",
  "-",
  "+",
  "1.2.3.4",
  "[127.0.0.1]",
  "[1.2.3.4]",
  "localhost",
  "mail.example.com",
  "example.org",
  "relay.example",
  "",
  "x..y",
  "_",
  "LOCALHOST",
  "sub.relay.example",
];
const GARBAGE = ['"', "[", "]", " ", ":", ",", "(", ")", "<", ">", "\\", "IPv6:::1"];

if (!haveReference()) {
  console.error("fuzz_reference: the reference trivial-rewrite is not installed");
  Deno.exit(1);
}
let seed = Number(Deno.args[0] ?? 1);
const count = Number(Deno.args[1] ?? 200);
const pieces = Deno.args[2] === "garbage" ? [...PIECES, ...GARBAGE] : PIECES;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const pick = () => pieces[Math.floor(random() * pieces.length)];

const mainCf = BASE_MAIN_CF + "relay_domains = relay.example\n";
captureLog(() => {});
const settings = await settingsFrom(configFromText("/nonexistent", mainCf));
const requests: Record<string, string>[] = [];
for (let i = 0; i < count; i++) {
  const address = Array.from({ length: 1 + Math.floor(random() * 6) }, pick).join("");
  requests.push(
    random() < 0.7
      ? { request: "resolve", sender: "", address }
      : { request: "rewrite", rule: random() < 0.8 ? "local" : "remote", address },
  );
}
const theirs = await referenceReplies(mainCf, {}, requests, [], true);
let same = 0;
for (let i = 0; i < count; i++) {
  const outcome = await answer(settings, new Map(Object.entries(requests[i])), "fuzz");
  const ours = "reply" in outcome
    ? JSON.stringify(Object.fromEntries(new AttrReader().push(outcome.reply)[0]))
    : `dropped: ${outcome.drop}`;
  const ref = JSON.stringify(Object.fromEntries(theirs[i]));
  if (ours === ref) same++;
  else console.log(`${JSON.stringify(requests[i])}\n  posthorn:  ${ours}\n  reference: ${ref}`);
}
console.log(`${same}/${count} answers the same`);
