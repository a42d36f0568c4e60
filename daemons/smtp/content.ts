// The message as smtp(8) sends it after DATA: CRLF line endings, a leading
// dot doubled (RFC 5321 4.5.2), lines longer than smtp_line_length_limit
// broken by inserting CRLF SPACE (as Postfix does, to spare MIME structure),
// and, for a server without 8BITMIME, every MIME part sent as 8bit or binary
// converted to quoted-printable (unless disable_mime_output_conversion).

import { messageBytes, type MessageContent, type MessageLine } from "../../lib/deliver/message.ts";

const dec = new TextDecoder("latin1");
const DOT = 0x2e;

/** The bytes to send after DATA (without the final `.` line). */
export function outgoingMessage(
  content: MessageContent,
  lineLimit: number,
  convert8bit: boolean,
): Uint8Array {
  const source = convert8bit ? convertContent(content) : content;
  return messageBytes(source, { eol: "\r\n", transform: (l) => wireLine(l, lineLimit) });
}

/** One line as sent: broken at the limit, dot-stuffed. */
export function wireLine(line: MessageLine, limit: number): MessageLine {
  let out = line;
  if (limit > 0 && out.length > limit) {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < out.length; at += limit) {
      parts.push(out.subarray(at, Math.min(out.length, at + limit)));
    }
    const joined = new Uint8Array(out.length + (parts.length - 1) * 3);
    let pos = 0;
    parts.forEach((p, i) => {
      if (i > 0) {
        joined.set([13, 10, 32], pos);
        pos += 3;
      }
      joined.set(p, pos);
      pos += p.length;
    });
    out = joined;
  }
  if (out.length && out[0] === DOT) {
    const stuffed = new Uint8Array(out.length + 1);
    stuffed[0] = DOT;
    stuffed.set(out, 1);
    out = stuffed;
  }
  return out;
}

/** The content with 8bit/binary MIME parts re-encoded as quoted-printable. */
export function convertContent(content: MessageContent): MessageContent {
  const { header, body } = convertPart(content.header, content.body);
  return { header, body, separated: content.separated || body.length > 0 };
}

interface PartHeaders {
  type: string;
  boundary: string;
  encoding: string;
}

function partHeaders(header: MessageLine[]): PartHeaders {
  const fields: string[] = [];
  for (const raw of header) {
    const line = dec.decode(raw);
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += line;
    else fields.push(line);
  }
  const get = (name: string) =>
    fields.find((f) => f.toLowerCase().startsWith(name + ":"))?.slice(name.length + 1).trim() ?? "";
  const ct = get("content-type");
  const boundary = /boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(ct);
  return {
    type: ct.split(";")[0].trim().toLowerCase(),
    boundary: boundary ? (boundary[1] ?? boundary[2]) : "",
    encoding: get("content-transfer-encoding").toLowerCase(),
  };
}

function convertPart(
  header: MessageLine[],
  body: MessageLine[],
): { header: MessageLine[]; body: MessageLine[] } {
  const h = partHeaders(header);
  if (h.type.startsWith("multipart/") && h.boundary) {
    return { header, body: convertMultipart(body, h.boundary) };
  }
  if (h.encoding !== "8bit" && h.encoding !== "binary") return { header, body };
  return { header: replaceEncoding(header), body: body.flatMap(quotedPrintable) };
}

function convertMultipart(body: MessageLine[], boundary: string): MessageLine[] {
  const delim = `--${boundary}`;
  const out: MessageLine[] = [];
  let part: MessageLine[] | undefined;
  const flush = () => {
    if (!part) return;
    let i = 0;
    while (i < part.length && part[i].length > 0) i++;
    const converted = convertPart(part.slice(0, i), part.slice(i + 1));
    out.push(...converted.header);
    if (i < part.length) out.push(new Uint8Array(0), ...converted.body);
    part = undefined;
  };
  for (const line of body) {
    const text = dec.decode(line).trimEnd();
    if (text === delim || text === `${delim}--`) {
      flush();
      out.push(line);
      if (text === delim) part = [];
      continue;
    }
    if (part) part.push(line);
    else out.push(line);
  }
  flush();
  return out;
}

function replaceEncoding(header: MessageLine[]): MessageLine[] {
  const out: MessageLine[] = [];
  let skipping = false;
  for (const raw of header) {
    const line = dec.decode(raw);
    if (skipping && /^[ \t]/.test(line)) continue;
    skipping = /^content-transfer-encoding:/i.test(line);
    if (!skipping) out.push(raw);
  }
  out.push(new TextEncoder().encode("Content-Transfer-Encoding: quoted-printable"));
  return out;
}

/** RFC 2045 6.7: one body line as quoted-printable lines (soft breaks keep each under 77). */
export function quotedPrintable(line: MessageLine): MessageLine[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    const last = i === line.length - 1;
    let piece: string;
    if ((b === 0x20 || b === 0x09) && !last) piece = String.fromCharCode(b);
    else if (b >= 33 && b <= 126 && b !== 0x3d) piece = String.fromCharCode(b);
    else piece = "=" + b.toString(16).toUpperCase().padStart(2, "0");
    // As Postfix's downgrade: a soft break once the line holds more than 72 characters.
    if (cur.length > 72) {
      out.push(cur + "=");
      cur = "";
    }
    cur += piece;
  }
  out.push(cur);
  const enc = new TextEncoder();
  return out.map((l) => enc.encode(l));
}
