// Table source files as postmap(1) and postalias(1) read them: logical lines
// (a line starting with whitespace continues the one before; empty and
// comment lines are skipped), and the `key whitespace value` split with
// Postfix 3.2's double-quoted keys.

/** One logical line and the number of its first physical line. */
export interface LogicalLine {
  lineno: number;
  text: string;
}

/** A problem with a source file, reported as a warning by the caller. */
export type SourceWarning = (text: string) => void;

const isSpace = (c: string) =>
  c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\v" || c === "\f";

/**
 * Splits `text` into logical lines. A continuation line keeps its leading
 * whitespace (Postfix joins the physical lines as they are); a first line
 * that starts with whitespace is reported through `warn` and skipped.
 */
export function logicalLines(text: string, file: string, warn: SourceWarning): LogicalLine[] {
  const out: LogicalLine[] = [];
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  let current: LogicalLine | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let j = 0;
    while (j < line.length && isSpace(line[j])) j++;
    if (j === line.length || line[j] === "#") continue;
    if (j === 0) {
      if (current) out.push(current);
      current = { lineno: i + 1, text: line };
    } else if (current) {
      current.text += line;
    } else {
      warn(`${file}: logical line must not start with whitespace: "${line}"`);
    }
  }
  if (current) out.push(current);
  for (const l of out) l.text = trimEnd(l.text);
  return out;
}

function trimEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isSpace(s[end - 1])) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** A `key value` pair, or the warning text when the line is malformed. */
export type KeyValue = { key: string; value: string } | { error: string };

/**
 * Splits a postmap(1) source line into key and value. A key in double quotes
 * may hold whitespace, with `\"` and `\\` escapes; it is kept as written,
 * quotes included, as the reference postmap stores it.
 */
export function splitKeyValue(text: string): KeyValue {
  let i = 0;
  if (text[0] === '"') {
    i = 1;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) return { error: `unbalanced '"' in '${text}' -- ignoring this line` };
    i++;
  }
  while (i < text.length && !isSpace(text[i])) i++;
  const key = text.slice(0, i);
  while (i < text.length && isSpace(text[i])) i++;
  if (i >= text.length) return { error: "expected format: key whitespace value" };
  return { key, value: text.slice(i) };
}

/** Parses a postmap source text into entries, lazily, reporting malformed lines as met. */
export function* parseMapSource(
  text: string,
  file: string,
  warn: SourceWarning,
  suffix = "",
): Generator<{ key: string; value: string; lineno: number }> {
  for (const line of logicalLines(text, file, warn)) {
    const kv = splitKeyValue(line.text);
    if ("error" in kv) {
      warn(`${file}, line ${line.lineno}: ${kv.error}${suffix}`);
      continue;
    }
    yield { key: kv.key, value: kv.value, lineno: line.lineno };
  }
}
