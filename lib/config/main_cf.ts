// main.cf as postconf(5) describes it: `name = value` logical lines.

import { logicalLines } from "./logical_lines.ts";

/** One `name = value` setting and the line it came from. */
export interface Setting {
  name: string;
  value: string;
  line: number;
}

/** A syntax error in main.cf, with Postfix's wording and the place. */
export class MainCfError extends Error {
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    super(`${file}, line ${line}: ${detail}`);
    this.name = "MainCfError";
  }
}

/**
 * Parses main.cf text. A later setting of the same name wins, as in Postfix
 * (`onWarning` hears "overriding earlier entry" and a stray continuation line);
 * a line without `=` is fatal (`missing '=' after attribute name`).
 */
export function parseMainCf(
  source: string,
  file: string,
  onWarning?: (text: string) => void,
): Setting[] {
  const settings: Setting[] = [];
  const seen = new Map<string, string>();
  const stray = (raw: string) =>
    onWarning?.(`${file}: logical line must not start with whitespace: "${raw}"`);
  for (const { text, line } of logicalLines(source, stray)) {
    const eq = text.indexOf("=");
    if (eq < 0) {
      throw new MainCfError(file, line, `missing '=' after attribute name: "${text}"`);
    }
    const name = text.slice(0, eq).trim();
    if (name === "" || /\s/.test(name)) {
      throw new MainCfError(file, line, `missing '=' after attribute name: "${name}"`);
    }
    const value = text.slice(eq + 1).trim();
    if (seen.has(name)) {
      onWarning?.(`${file}, line ${line}: overriding earlier entry: ${name}=${seen.get(name)}`);
    }
    seen.set(name, value);
    settings.push({ name, value, line });
  }
  return settings;
}
