// RFC 822/5322 lexical tokens of a header value, as Postfix's tok822 scanner
// sees them: atoms, quoted strings, domain literals, comments and the single
// special characters. Malformed input is repaired, never rejected: an
// unterminated quoted string, comment or literal ends at the end of the text.

/** What kind of token: a word, or one special character. */
export type TokenType = "atom" | "qstring" | "domlit" | "comment" | "special";

/** One token with its place in the source text. */
export interface Token {
  type: TokenType;
  /**
   * atom: the text; qstring: the content with quotes and backslashes removed;
   * domlit: the literal with its brackets (`[1.2.3.4]`); comment: the content
   * without the outer parentheses, as written; special: the character.
   */
  text: string;
  /** Offset of the token's first character in the source. */
  start: number;
  /** Offset just past the token's last character. */
  end: number;
}

/** RFC 822 specials; each is a token of its own outside quotes. */
export const SPECIALS = '()<>@,;:\\".[]';

function isSpace(ch: string): boolean {
  return ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
}

function isAtomChar(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return code > 0x20 && code !== 0x7f && !SPECIALS.includes(ch);
}

/** Scans a quoted string starting at the opening quote; returns [content, end]. */
function scanQuoted(text: string, at: number): [string, number] {
  let out = "";
  let i = at + 1;
  while (i < text.length && text[i] !== '"') {
    if (text[i] === "\\" && i + 1 < text.length) i++;
    out += text[i++];
  }
  return [out, Math.min(i + 1, text.length)];
}

/** Scans a (possibly nested) comment at `(`; returns [content, end]. */
function scanComment(text: string, at: number): [string, number] {
  let level = 0;
  let i = at;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") {
      i++;
    } else if (ch === "(") {
      level++;
    } else if (ch === ")" && --level === 0) {
      return [text.slice(at + 1, i), i + 1];
    }
  }
  return [text.slice(at + 1), text.length];
}

/** Scans a domain literal at `[`; returns [literal with brackets, end]. */
function scanLiteral(text: string, at: number): [string, number] {
  let out = "[";
  let i = at + 1;
  while (i < text.length && text[i] !== "]") {
    if (text[i] === "\\" && i + 1 < text.length) i++;
    out += text[i++];
  }
  return [out + "]", Math.min(i + 1, text.length)];
}

/**
 * Splits `text` into tokens. `limit` bounds the number kept (Postfix's
 * header_address_token_limit); the rest of the text is ignored.
 */
export function scanTokens(text: string, limit = Infinity): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length && tokens.length < limit) {
    const ch = text[i];
    if (isSpace(ch)) {
      i++;
    } else if (ch === '"') {
      const [content, end] = scanQuoted(text, i);
      tokens.push({ type: "qstring", text: content, start: i, end });
      i = end;
    } else if (ch === "(") {
      const [content, end] = scanComment(text, i);
      tokens.push({ type: "comment", text: content, start: i, end });
      i = end;
    } else if (ch === "[") {
      const [literal, end] = scanLiteral(text, i);
      tokens.push({ type: "domlit", text: literal, start: i, end });
      i = end;
    } else if (isAtomChar(ch)) {
      let end = i + 1;
      while (end < text.length && isAtomChar(text[end])) end++;
      tokens.push({ type: "atom", text: text.slice(i, end), start: i, end });
      i = end;
    } else {
      // A special, or a control character Postfix passes through as one.
      tokens.push({ type: "special", text: ch, start: i, end: i + 1 });
      i++;
    }
  }
  return tokens;
}
