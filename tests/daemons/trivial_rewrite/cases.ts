// The golden case files of tests/golden/trivial_rewrite: NAME.cases holds
// main.cf lines ("= name = value"), table files ("file NAME" ... "end",
// written beside main.cf; "$dir" stands for that directory) and queries
// (request, sender or rule, address, separated by tabs); NAME.ref holds one
// answer line per query, made from the reference trivial-rewrite(8).

import { describeResolveFlags } from "../../../lib/rewrite_client.ts";

/** The settings every case file starts from. */
export const BASE_MAIN_CF = [
  "compatibility_level = 3.6",
  "myhostname = mail.example.com",
  "mydomain = example.com",
  "inet_interfaces = loopback-only",
  "",
].join("\n");

/** One query: resolve / resolve_verify (with a sender) or rewrite (with a rule). */
export interface Query {
  line: string;
  request: string;
  /** The sender (resolve requests) or the rule (rewrite). */
  second: string;
  address: string;
}

/** A parsed case file. */
export interface CaseFile {
  /**
   * "# log: subset" in the file: the reference logs some warnings once per
   * process and answers one request per process here, so only check that
   * every line Posthorn logs is one the reference logged.
   */
  logSubset: boolean;
  mainCf: string;
  files: Record<string, string>;
  queries: Query[];
}

/** The golden directory. */
export const GOLDEN_DIR = new URL("../../golden/trivial_rewrite/", import.meta.url).pathname;

/** Names of the case files (without .cases). */
export function caseNames(): string[] {
  return [...Deno.readDirSync(GOLDEN_DIR)]
    .filter((e) => e.name.endsWith(".cases"))
    .map((e) => e.name.slice(0, -".cases".length))
    .sort();
}

/** Reads and parses NAME.cases. */
export function readCases(name: string): CaseFile {
  const lines = Deno.readTextFileSync(`${GOLDEN_DIR}${name}.cases`).split("\n");
  const out: CaseFile = { logSubset: false, mainCf: "", files: {}, queries: [] };
  const settings = new Map<string, string>();
  for (const line of BASE_MAIN_CF.split("\n").filter(Boolean)) {
    settings.set(line.split("=")[0].trim(), line);
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "# log: subset") out.logSubset = true;
    if (line.startsWith("#") || line.trim() === "") continue;
    if (line.startsWith("= ")) {
      // A case's own setting replaces the base one (no "overriding earlier entry").
      const setting = line.slice(2);
      settings.set(setting.split("=")[0].trim(), setting);
    } else if (line.startsWith("file ")) {
      const body: string[] = [];
      while (++i < lines.length && lines[i] !== "end") body.push(lines[i]);
      out.files[line.slice(5).trim()] = body.join("\n") + "\n";
    } else {
      const [request, second = "", address = ""] = line.split("\t");
      out.queries.push({ line, request, second, address });
    }
  }
  out.mainCf = [...settings.values()].join("\n") + "\n";
  return out;
}

/** The attribute list a query sends. */
export function requestOf(q: Query): Record<string, string> {
  return q.request === "rewrite"
    ? { request: q.request, rule: q.second, address: q.address }
    : { request: q.request, sender: q.second, address: q.address };
}

/** One answer line: the query, then what came back. */
export function formatAnswer(q: Query, reply: Map<string, string>): string {
  if (q.request === "rewrite") return `${q.line}\t=> address=${reply.get("address")}`;
  const flags = Number(reply.get("flags"));
  return `${q.line}\t=> transport=${reply.get("transport")} nexthop=${reply.get("nexthop")} ` +
    `recipient=${reply.get("recipient")} flags=${flags} (${describeResolveFlags(flags)})`;
}
