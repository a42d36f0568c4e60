// master.cf as master(5) describes it: one service per logical line, eight
// fields (service type private unpriv chroot wakeup maxproc command) and the
// command's arguments, where `-o name=value` and `-o { name = value }` set
// per-service parameters.

import { logicalLines } from "./logical_lines.ts";

/** The service types master(5) knows. */
export const serviceTypes = ["inet", "unix", "unix-dgram", "fifo", "pass"] as const;

/** One master.cf service entry, fields as written ("-" kept). */
export interface MasterEntry {
  service: string;
  type: string;
  private: string;
  unprivileged: string;
  chroot: string;
  wakeup: string;
  processLimit: string;
  /** The command name (first word of the command field). */
  command: string;
  /** The arguments after the command, `-o` groups normalised to `name=value`. */
  args: string[];
  /** The `-o name=value` settings, in order. */
  overrides: [string, string][];
  line: number;
}

/** A master.cf entry Postfix refuses, with Postfix's wording. */
export class MasterCfError extends Error {
  constructor(message: string, readonly line: number) {
    super(message);
    this.name = "MasterCfError";
  }
}

/** Splits on blanks, keeping `{ ... }` groups (nested) as one word. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let current = "";
  let level = 0;
  for (const ch of text) {
    if (ch === "{") level++;
    else if (ch === "}" && level > 0) level--;
    if (level === 0 && (ch === " " || ch === "\t")) {
      if (current) words.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current) words.push(current);
  return words;
}

/** `{ name = value }` → `name=value`; `name=value` unchanged. */
export function normalizeSetting(word: string): string {
  const inner = word.startsWith("{") && word.endsWith("}") ? word.slice(1, -1).trim() : word;
  const eq = inner.indexOf("=");
  if (eq < 0) return inner;
  return `${inner.slice(0, eq).trim()}=${inner.slice(eq + 1).trim()}`;
}

/** Parses master.cf text; throws MasterCfError for the first bad entry. */
export function parseMasterCf(source: string, file: string): MasterEntry[] {
  return logicalLines(source).map(({ text, line }) => parseEntry(text, line, file));
}

function parseEntry(text: string, line: number, file: string): MasterEntry {
  const words = splitWords(text);
  if (words.length < 8) {
    throw new MasterCfError(`file ${file}: line ${line}: bad field count`, line);
  }
  const [service, type, priv, unpriv, chroot, wakeup, maxproc, command, ...rest] = words;
  const bad = (field: string, value: string) =>
    new MasterCfError(`invalid ${field} field "${value}" in "${text}"`, line);
  if (!(serviceTypes as readonly string[]).includes(type)) throw bad("type", type);
  if (!/^[-yn]$/.test(priv)) throw bad("private", priv);
  if (!/^[-yn]$/.test(unpriv)) throw bad("unprivileged", unpriv);
  if (!/^[-yn]$/.test(chroot)) throw bad("chroot", chroot);
  if (!/^(-|\d+\??)$/.test(wakeup)) throw bad("wakeup", wakeup);
  if (!/^(-|\d+)$/.test(maxproc)) throw bad("process_limit", maxproc);
  const args: string[] = [];
  const overrides: [string, string][] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (word === "-o" && i + 1 < rest.length) {
      const setting = normalizeSetting(rest[++i]);
      args.push("-o", setting);
      const eq = setting.indexOf("=");
      if (eq > 0) overrides.push([setting.slice(0, eq), setting.slice(eq + 1)]);
    } else {
      args.push(word.startsWith("{") ? word.slice(1, -1).trim() : word);
    }
  }
  return {
    service,
    type,
    private: priv,
    unprivileged: unpriv,
    chroot,
    wakeup,
    processLimit: maxproc,
    command,
    args,
    overrides,
    line,
  };
}
