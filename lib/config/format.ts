// Postconf's output forms: `name = value` lines with whitespace normalised and,
// when asked, folded at 80 columns with a 4-space indent; master.cf entries in
// aligned columns, their `-o` settings one per line when folded.

import { normalizeSetting, splitWords } from "./master_cf.ts";

/** Lines longer than this are folded by `-f`. */
export const lineLimit = 80;
/** The indent of a folded line. */
export const foldIndent = "    ";

/** The words of a value, as postconf prints them (runs of whitespace become one space). */
export function valueWords(value: string): string[] {
  return value.split(/[ \t\r\n]+/).filter((w) => w !== "");
}

/**
 * Joins `words` after `label` (`"name ="`, or "" for -h), one space apart;
 * with `fold`, a word that would pass column 80 starts a new indented line.
 */
export function foldWords(label: string, words: string[], fold: boolean): string {
  const lines: string[] = [];
  let line = label;
  for (const word of words) {
    if (line === "") {
      line = word;
    } else if (fold && line.length + 1 + word.length > lineLimit && line.trim() !== "") {
      lines.push(line);
      line = foldIndent + word;
    } else {
      line += " " + word;
    }
  }
  lines.push(line);
  return lines.join("\n");
}

/** `name = value` (or the value alone with `hideName`), folded or not. */
export function formatParameter(
  name: string,
  value: string,
  options: { fold?: boolean; hideName?: boolean } = {},
): string {
  return foldWords(options.hideName ? "" : `${name} =`, valueWords(value), !!options.fold);
}

/** The seven fixed master.cf fields and the command with its arguments. */
export interface MasterFields {
  /** service, type, private, unprivileged, chroot, wakeup, process_limit. */
  fields: string[];
  /** The command name and its arguments, `-o` settings as `name=value` (braced if they hold blanks). */
  command: string[];
}

/** The field names -F uses, in master.cf order. */
export const masterFieldNames = [
  "service",
  "type",
  "private",
  "unprivileged",
  "chroot",
  "wakeup",
  "process_limit",
  "command",
] as const;

/** Start columns of the -M output's fields. */
const columns = [0, 11, 17, 25, 33, 41, 49, 57];

/** A word as postconf shows it: braced when it holds blanks. */
function showWord(word: string): string {
  return /[ \t]/.test(word) ? `{${word}}` : word;
}

/** Splits a master.cf logical line into fields and normalised command words. */
export function masterFields(text: string): MasterFields {
  const words = splitWords(text);
  const command: string[] = [];
  const rest = words.slice(7);
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "-o" && i + 1 < rest.length) {
      command.push("-o", showWord(normalizeSetting(rest[++i])));
    } else if (rest[i].startsWith("{") && rest[i].endsWith("}")) {
      // a { ... } argument loses the blanks inside its braces: "{a  b}"
      command.push(`{${rest[i].slice(1, -1).trim()}}`);
    } else {
      command.push(rest[i]);
    }
  }
  return { fields: words.slice(0, 7), command };
}

/** The command field as one line or, folded, with each `-o` on its own line. */
export function formatCommand(label: string, command: string[], fold: boolean): string {
  if (!fold) return [label, ...command].filter((w) => w !== "").join(" ");
  const lines: string[] = [];
  let line = label;
  for (let i = 0; i < command.length; i++) {
    const word = command[i];
    if (word === "-o") {
      // each -o setting on a line of its own (a trailing -o too)
      lines.push(line);
      line = i + 1 < command.length ? `${foldIndent}-o ${command[++i]}` : `${foldIndent}-o`;
    } else if (line === "") {
      line = word;
    } else if (line.length + 1 + word.length >= lineLimit && line.trim() !== "") {
      // master.cf entries fold one column earlier than main.cf lines
      lines.push(line);
      line = foldIndent + word;
    } else {
      line += " " + word;
    }
  }
  lines.push(line);
  return lines.join("\n");
}

/** One master.cf entry in -M form: aligned columns, folded when asked. */
export function formatMasterEntry(entry: MasterFields, fold: boolean): string {
  let head = "";
  entry.fields.forEach((field, i) => {
    if (i > 0) head = head.padEnd(Math.max(columns[i], head.length + 1));
    head += field;
  });
  head = head.padEnd(Math.max(columns[7], head.length + 1));
  const [name, ...args] = entry.command;
  return formatCommand(head + (name ?? ""), args, fold);
}
