// Postfix's logical lines, as main.cf, master.cf and table source files use
// them (postconf(5) "Syntax"): empty lines, whitespace-only lines and lines
// whose first non-blank character is `#` are ignored; a line that starts with
// whitespace continues the logical line before it.

/** One logical line: its text and the number of its first physical line. */
export interface LogicalLine {
  text: string;
  line: number;
}

/**
 * Splits `source` into logical lines. Continuations are joined with one space
 * and trailing whitespace is dropped, so `a\n  b` reads as `a b`. With
 * `onStray`, a whitespace-led line before any logical line is reported and
 * skipped (without it, it starts a logical line).
 */
export function logicalLines(
  source: string,
  onStray?: (line: string) => void,
): LogicalLine[] {
  const out: LogicalLine[] = [];
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, "");
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    if (/^[ \t]/.test(raw) && out.length > 0) {
      out[out.length - 1].text += " " + trimmed;
    } else if (/^[ \t]/.test(raw) && onStray) {
      // Postfix skips a continuation with nothing to continue, with a warning.
      onStray(raw);
    } else {
      out.push({ text: raw.trimEnd().replace(/^[ \t]+/, ""), line: i + 1 });
    }
  }
  return out;
}
