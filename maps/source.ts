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
export function* logicalLines(
  text: string,
  file: string,
  warn: SourceWarning,
): Generator<LogicalLine> {
  let current: LogicalLine | undefined;
  let lineno = 0;
  for (let pos = 0; pos < text.length;) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = text.length;
    lineno++;
    const first = text.charCodeAt(pos);
    if (end > pos && first !== 35 && !isSpaceCode(first)) {
      if (current) yield finished(current);
      current = { lineno, text: text.slice(pos, end) };
    } else if (end > pos && first !== 35) {
      let j = pos;
      while (j < end && isSpaceCode(text.charCodeAt(j))) j++;
      if (j < end && text.charCodeAt(j) !== 35) {
        const line = text.slice(pos, end);
        if (current) current.text += line;
        else warn(`${file}: logical line must not start with whitespace: "${line}"`);
      }
    }
    pos = end + 1;
  }
  if (current) yield finished(current);
}

function finished(l: LogicalLine): LogicalLine {
  if (isSpaceCode(l.text.charCodeAt(l.text.length - 1))) l.text = trimEnd(l.text);
  return l;
}

function isSpaceCode(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function trimEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isSpaceCode(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

const plainEntry = /^(\S+)[ \t\n\v\f\r]+(\S[^]*)$/;

/** A `key value` pair, or the warning text when the line is malformed. */
export type KeyValue = { key: string; value: string } | { error: string };

/**
 * Splits a postmap(1) source line into key and value. A key in double quotes
 * may hold whitespace, with `\"` and `\\` escapes; it is kept as written,
 * quotes included, as the reference postmap stores it.
 */
export function splitKeyValue(text: string): KeyValue {
  if (text.charCodeAt(0) !== 34) {
    const m = plainEntry.exec(text);
    if (m) return { key: m[1], value: m[2] };
  }
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
