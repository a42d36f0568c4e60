// Bounce message templates as bounce(5) describes them: a file of
// `name = <<EOF ... EOF` blocks (failure_template, delay_template,
// success_template, verify_template), each with optional headers (Charset,
// From, Subject, Postmaster-Subject), a blank line and message text with main.cf
// $parameters. Templates a file leaves out, and headers a template leaves out,
// keep the built-in ones. Used by postconf -t/-b and the bounce daemon.

import { builtinTemplateText } from "./bounce_defaults.ts";

/** The template names, in the order postconf prints them. */
export const templateNames = [
  "failure_template",
  "delay_template",
  "success_template",
  "verify_template",
] as const;

/** One of the four template names. */
export type TemplateName = typeof templateNames[number];

/** Header labels as Postfix writes them, in order. */
const headerLabels = ["Charset", "From", "Subject", "Postmaster-Subject"];

/** A parsed template: its headers (canonical labels, in order) and text lines. */
export interface BounceTemplate {
  name: TemplateName;
  headers: [string, string][];
  body: string[];
}

/** A bounce template file problem; `fatal` ones stop the program. */
export interface TemplateProblem {
  text: string;
  fatal: boolean;
}

/** The short kind in messages: "delay" for delay_template. */
export function templateKind(name: TemplateName): string {
  return name.replace(/_template$/, "");
}

/**
 * Parses template file text. Problems (unknown template or header, missing
 * EOF, a line that is not `name = <<EOF`) are reported with the file name and
 * line as the reference words them; a bad template is skipped.
 */
export function parseTemplates(
  text: string,
  file: string,
  problems: TemplateProblem[] = [],
): Map<TemplateName, BounceTemplate> {
  const out = new Map<TemplateName, BounceTemplate>();
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const m = /^\s*([^\s=]+)\s*=\s*<<\s*EOF\s*$/.exec(line);
    if (!m) {
      const what = line.includes("=")
        ? `missing "<<EOF" after "="`
        : "missing '=' after attribute name";
      problems.push({ text: `${file}, line ${i + 2}: ${what}: "${line.trim()}"`, fatal: true });
      return out;
    }
    const end = lines.indexOf("EOF", i + 1);
    const stop = end < 0 ? lines.length : end;
    const block = lines.slice(i + 1, stop);
    i = stop;
    if (end < 0) {
      problems.push({ text: `${file}, line ${stop + 1}: missing "EOF" end marker`, fatal: false });
      break;
    }
    const name = m[1] as TemplateName;
    if (!(templateNames as readonly string[]).includes(name)) {
      problems.push({
        text: `${file}, line ${stop + 2}: unknown template name: ${name} -- ignoring this template`,
        fatal: false,
      });
      continue;
    }
    const parsed = parseBlock(name, block, file, problems);
    if (parsed) out.set(name, parsed);
  }
  return out;
}

function parseBlock(
  name: TemplateName,
  block: string[],
  file: string,
  problems: TemplateProblem[],
): BounceTemplate | undefined {
  const headers: [string, string][] = [];
  let i = 0;
  for (; i < block.length; i++) {
    const h = /^([^\s:]+):\s*(.*)$/.exec(block[i]);
    if (!h) break;
    const label = headerLabels.find((l) => l.toLowerCase() === h[1].toLowerCase());
    if (!label) {
      problems.push({
        text: `${file}: unknown "${h[1]}" header label in ${templateKind(name)} template ` +
          "-- ignoring this template",
        fatal: false,
      });
      return undefined;
    }
    headers.push([label, h[2]]);
  }
  if (i < block.length && block[i] === "" && headers.length) i++;
  return { name, headers, body: block.slice(i) };
}

let builtins: Map<TemplateName, BounceTemplate> | undefined;

/** The built-in templates (Postfix 3.7's). */
export function builtinTemplates(): Map<TemplateName, BounceTemplate> {
  builtins ??= parseTemplates(builtinTemplateText, "built-in");
  return builtins;
}

/** The templates in force: each from `custom` when it has it, headers completed from the built-in. */
export function effectiveTemplates(
  custom: Map<TemplateName, BounceTemplate> = new Map(),
): BounceTemplate[] {
  return templateNames.map((name) => {
    const base = builtinTemplates().get(name)!;
    const mine = custom.get(name);
    if (!mine) return base;
    const given = new Map(mine.headers);
    const headers = headerLabels
      .filter((l) => given.has(l) || base.headers.some(([b]) => b === l))
      .map((l) => [l, given.get(l) ?? base.headers.find(([b]) => b === l)![1]] as [string, string]);
    return { name, headers, body: mine.body };
  });
}

/** A template as postconf -t prints it. */
export function formatTemplate(t: BounceTemplate): string {
  const head = t.headers.map(([l, v]) => `${l}: ${v}`);
  return [`${t.name} = <<EOF`, ...head, "", ...t.body, "EOF"].join("\n");
}

const timeUnits: Record<string, number> = {
  seconds: 1,
  minutes: 60,
  hours: 3600,
  days: 86400,
  weeks: 604800,
};

/**
 * The special template parameters bounce(5) lists: delay_warning_time_UNIT and
 * maximal_queue_lifetime_UNIT (UNIT seconds ... weeks), given a parameter's
 * value in seconds. Returns the number, or undefined for another name.
 */
export function timeTemplateValue(
  name: string,
  seconds: (parameter: string) => number,
): { value: number; parameter: string; unit: string } | undefined {
  const m = /^(delay_warning_time|maximal_queue_lifetime)_(seconds|minutes|hours|days|weeks)$/
    .exec(name);
  if (!m) return undefined;
  return { value: Math.floor(seconds(m[1]) / timeUnits[m[2]]), parameter: m[1], unit: m[2] };
}
