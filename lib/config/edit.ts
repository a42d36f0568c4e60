// Rewriting main.cf and master.cf as postconf -e, -#, -X, -Me, -M#, -MX, -Fe,
// -Pe and -PX do: every line not edited is kept as it was (comments, blank
// lines, order); the file is replaced atomically (a temporary file in the same
// directory, then rename), so a reader sees the old file or the new one.

import { formatMasterEntry, type MasterFields, masterFields } from "./format.ts";

/** How a physical line of main.cf or master.cf reads. */
type LineKind = "start" | "continuation" | "other";

function kindOf(line: string): LineKind {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return "other";
  return /^[ \t]/.test(line) ? "continuation" : "start";
}

/** The physical lines of `text`; a final newline does not make an empty last line. */
function physicalLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The parameter name a main.cf start line sets. */
function mainCfName(line: string): string {
  const eq = line.indexOf("=");
  return (eq < 0 ? line : line.slice(0, eq)).trim();
}

/** What to do with main.cf entries, by parameter name. */
export interface MainCfEdit {
  /** name → new value (-e); names not in the file are appended in this order. */
  set?: Map<string, string>;
  /** Names to comment out (-#). */
  comment?: Set<string>;
  /** Names to remove (-X). */
  remove?: Set<string>;
}

/** Applies `edit` to main.cf text and returns the new text. */
export function editMainCf(text: string, edit: MainCfEdit): string {
  const out: string[] = [];
  const seen = new Set<string>();
  let current: "keep" | "replaced" | "comment" | "remove" = "keep";
  for (const line of physicalLines(text)) {
    const kind = kindOf(line);
    if (kind === "start") {
      const name = mainCfName(line);
      if (edit.set?.has(name)) {
        out.push(`${name} = ${edit.set.get(name)}`);
        seen.add(name);
        current = "replaced";
      } else if (edit.comment?.has(name)) {
        out.push("#" + line);
        current = "comment";
      } else if (edit.remove?.has(name)) {
        current = "remove";
      } else {
        out.push(line);
        current = "keep";
      }
    } else if (kind === "continuation") {
      if (current === "keep") out.push(line);
      else if (current === "comment") out.push("#" + line);
    } else {
      out.push(line);
    }
  }
  for (const [name, value] of edit.set ?? []) {
    if (!seen.has(name)) out.push(`${name} = ${value}`);
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** A change to one master.cf entry: its new fields, or null to remove it. */
export type MasterChange =
  | {
    action: "replace";
    entry: MasterFields;
    /** Write the new entry where the old one starts (-Me), not where it ends (-Fe, -Pe). */
    inPlace?: boolean;
  }
  | { action: "comment" }
  | { action: "remove" };

/**
 * Applies changes to master.cf text. `decide` sees each entry (fields of its
 * logical line) and returns a change or undefined to keep it; `append` entries
 * go at the end. A replaced entry is written in folded -M form where the old
 * one ended, so comments inside the old entry come before it.
 */
export function editMasterCf(
  text: string,
  decide: (entry: MasterFields) => MasterChange | undefined,
  append: MasterFields[] = [],
): string {
  const lines = physicalLines(text);
  const out: string[] = [];
  let pending: string | undefined; // a replaced entry, written when the old one ends
  let current: "keep" | "comment" | "remove" | "replace" = "keep";
  const flush = () => {
    if (pending !== undefined) out.push(pending);
    pending = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const kind = kindOf(line);
    if (kind === "other") {
      out.push(line);
      continue;
    }
    if (kind === "continuation") {
      if (current === "keep") out.push(line);
      else if (current === "comment") out.push("#" + line);
      continue;
    }
    flush();
    const logical = [line.trim()];
    for (let j = i + 1; j < lines.length && kindOf(lines[j]) !== "start"; j++) {
      if (kindOf(lines[j]) === "continuation") logical.push(lines[j].trim());
    }
    const change = decide(masterFields(logical.join(" ")));
    current = change?.action ?? "keep";
    if (!change) out.push(line);
    else if (change.action === "comment") out.push("#" + line);
    else if (change.action === "replace" && change.inPlace) {
      out.push(formatMasterEntry(change.entry, true));
    } else if (change.action === "replace") pending = formatMasterEntry(change.entry, true);
  }
  flush();
  for (const entry of append) out.push(formatMasterEntry(entry, true));
  return out.length ? out.join("\n") + "\n" : "";
}

/** Replaces `path` with `text` through a temporary file and rename. */
export function writeAtomically(path: string, text: string): void {
  const temp = `${path}.tmp`;
  let mode: number | undefined;
  try {
    mode = Deno.statSync(path).mode ?? undefined;
  } catch {
    // a new file gets the default mode
  }
  const file = Deno.openSync(temp, { write: true, create: true, truncate: true });
  try {
    const data = new TextEncoder().encode(text);
    let off = 0;
    while (off < data.length) off += file.writeSync(data.subarray(off));
    file.syncSync();
  } finally {
    file.close();
  }
  if (mode !== undefined) Deno.chmodSync(temp, mode & 0o7777);
  Deno.renameSync(temp, path);
}
