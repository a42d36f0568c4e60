// smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks and
// smtp_body_checks (lmtp_* for lmtp): restricted header_checks(5) and
// body_checks(5) tables applied to the message as the client sends it.
// Only actions that change neither the delivery time nor the destination
// apply: DUNNO (OK), IGNORE, INFO, PREPEND, REPLACE, STRIP, WARN. Any other
// action is logged as Postfix's smtp(8) logs it ("unsupported command in
// smtp_header_checks map: REJECT ...") and the line goes out unchanged.
//
// Header classes as in cleanup: the message's own headers go to
// smtp_header_checks, except MIME headers (Content-*, MIME-Version), which
// go to smtp_mime_header_checks like the headers of multipart parts; the
// headers of an attached message (message/rfc822) go to
// smtp_nested_header_checks. A header is looked up as one string,
// continuation lines joined with newlines. Body checks see every body line
// (boundaries included), not the part headers.

import type { Config } from "../../lib/config/mod.ts";
import type { MessageContent, MessageLine } from "../../lib/deliver/message.ts";
import { ActionError, isHeaderLine, parseAction } from "../../lib/header_checks.ts";
import { info, warn } from "../../lib/log.ts";
import { type Dict, openMap } from "../../maps/mod.ts";

/** One check table (the parameter's list of tables, searched in order). */
interface CheckTable {
  mapClass: string;
  lookup(line: string): Promise<string | undefined>;
}

/** The four tables of the smtp (or lmtp) client; absent ones are empty parameters. */
export interface SmtpChecks {
  header?: CheckTable;
  mime?: CheckTable;
  nested?: CheckTable;
  body?: CheckTable;
}

/** Opens the tables of `prefix` (smtp or lmtp); undefined when all four are empty. */
export function smtpChecksFromConfig(config: Config, prefix: string): SmtpChecks | undefined {
  const open = (suffix: string): CheckTable | undefined => {
    const mapClass = `${prefix}_${suffix}`;
    const specs = config.list(mapClass);
    if (!specs.length) return undefined;
    const tables: Dict[] = specs.map((spec) => openMap(spec, { cwd: config.configDir }));
    return {
      mapClass,
      async lookup(line) {
        for (const t of tables) {
          const v = await t.lookup(line);
          if (v !== undefined) return v;
        }
        return undefined;
      },
    };
  };
  const checks: SmtpChecks = {
    header: open("header_checks"),
    mime: open("mime_header_checks"),
    nested: open("nested_header_checks"),
    body: open("body_checks"),
  };
  return checks.header || checks.mime || checks.nested || checks.body ? checks : undefined;
}

const SUPPORTED = new Set(["DUNNO", "OK", "IGNORE", "INFO", "PREPEND", "REPLACE", "STRIP", "WARN"]);
const MIME_HEADERS = new Set([
  "content-description",
  "content-disposition",
  "content-id",
  "content-transfer-encoding",
  "content-type",
  "mime-version",
]);

const dec = new TextDecoder("latin1");
const latin1 = (text: string): MessageLine => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

/** What a check does to a line: keep it, drop it, or replace it; with lines to put before. */
interface Outcome {
  prepend: string[];
  replace?: string;
  drop: boolean;
}

/** Looks `text` up in `table` and applies the action found, logging as Postfix's smtp(8). */
async function check(
  table: CheckTable | undefined,
  where: "header" | "body",
  text: string,
  queueId: string,
): Promise<Outcome> {
  const keep: Outcome = { prepend: [], drop: false };
  if (!table) return keep;
  let result: string | undefined;
  try {
    result = await table.lookup(text);
  } catch (err) {
    warn(`${table.mapClass}: ${(err as Error).message}`);
    return keep;
  }
  if (result === undefined) return keep;
  const name = (/^\S*/.exec(result.trimStart())?.[0] ?? "").toUpperCase();
  if (!SUPPORTED.has(name)) {
    warn(`unsupported command in ${table.mapClass} map: ${result}`);
    return keep;
  }
  let action;
  try {
    action = parseAction(result, table.mapClass, where === "header");
  } catch (err) {
    if (!(err instanceof ActionError)) throw err;
    warn(err.message);
    return keep;
  }
  const log = (what: string) =>
    info(
      `${queueId}: ${what}: ${where} ${text.slice(0, 60)}${action.text ? `: ${action.text}` : ""}`,
    );
  switch (action.name) {
    case "WARN":
      log("warning");
      return keep;
    case "INFO":
      log("info");
      return keep;
    case "STRIP":
      log("strip");
      return { prepend: [], drop: true };
    case "IGNORE":
      return { prepend: [], drop: true };
    case "PREPEND":
      log("prepend");
      return { prepend: [action.text], drop: false };
    case "REPLACE":
      log("replace");
      return { prepend: [], replace: action.text, drop: false };
    default:
      return keep;
  }
}

/** Splits header lines into logical headers (a first line and its continuation lines). */
function logicalHeaders(lines: MessageLine[]): MessageLine[][] {
  const out: MessageLine[][] = [];
  for (const l of lines) {
    const cont = l.length > 0 && (l[0] === 0x20 || l[0] === 0x09);
    if (cont && out.length) out[out.length - 1].push(l);
    else out.push([l]);
  }
  return out;
}

/** The Content-Type of a header block: type and boundary. */
function contentType(headers: string[]): { type: string; boundary: string } {
  const ct = headers.find((h) => /^content-type[ \t]*:/i.test(h));
  if (!ct) return { type: "", boundary: "" };
  const value = ct.slice(ct.indexOf(":") + 1).replace(/\n/g, "");
  const b = /boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(value);
  return {
    type: value.split(";")[0].trim().toLowerCase(),
    boundary: b ? (b[1] ?? b[2]) : "",
  };
}

type HeaderClass = "primary" | "multipart" | "nested";

/** Applies the checks to a message's content; the content as sent. */
export async function applySmtpChecks(
  content: MessageContent,
  checks: SmtpChecks,
  queueId: string,
): Promise<MessageContent> {
  const header = await headerBlock(content.header, "primary", checks, queueId);
  const body = await bodyOf(content.body, header.type, checks, queueId);
  return { header: header.lines, body, separated: content.separated };
}

/** Header lines with their checks applied, and the block's Content-Type. */
async function headerBlock(
  lines: MessageLine[],
  cls: HeaderClass,
  checks: SmtpChecks,
  queueId: string,
): Promise<{ lines: MessageLine[]; type: { type: string; boundary: string } }> {
  const out: MessageLine[] = [];
  const texts: string[] = [];
  for (const group of logicalHeaders(lines)) {
    const text = group.map((l) => dec.decode(l)).join("\n");
    if (!isHeaderLine(text)) {
      out.push(...group);
      continue;
    }
    const name = text.slice(0, text.indexOf(":")).trim().toLowerCase();
    const table = cls === "multipart" || (MIME_HEADERS.has(name) && cls === "primary")
      ? checks.mime
      : cls === "nested"
      ? checks.nested
      : checks.header;
    const o = await check(table, "header", text, queueId);
    for (const p of o.prepend) out.push(...p.split("\n").map(latin1));
    if (o.drop) continue;
    if (o.replace !== undefined) {
      out.push(...o.replace.split("\n").map(latin1));
      texts.push(o.replace);
    } else {
      out.push(...group);
      texts.push(text);
    }
  }
  return { lines: out, type: contentType(texts) };
}

/** Body lines with body checks, MIME part headers with header checks. */
async function bodyOf(
  lines: MessageLine[],
  type: { type: string; boundary: string },
  checks: SmtpChecks,
  queueId: string,
): Promise<MessageLine[]> {
  if (type.type === "message/rfc822") {
    // An attached message: its own header block (nested), then its body.
    const end = lines.findIndex((l) => l.length === 0);
    const head = end < 0 ? lines : lines.slice(0, end);
    const nested = await headerBlock(head, "nested", checks, queueId);
    if (end < 0) return nested.lines;
    const rest = await bodyOf(lines.slice(end + 1), nested.type, checks, queueId);
    return [...nested.lines, new Uint8Array(0), ...rest];
  }
  if (type.type.startsWith("multipart/") && type.boundary) {
    return await multipart(lines, type.boundary, checks, queueId);
  }
  return await bodyLines(lines, checks, queueId);
}

async function bodyLines(
  lines: MessageLine[],
  checks: SmtpChecks,
  queueId: string,
): Promise<MessageLine[]> {
  if (!checks.body) return lines;
  const out: MessageLine[] = [];
  for (const l of lines) {
    const text = dec.decode(l);
    // Empty lines are not looked up (as cleanup's body checks).
    const o = text === "" ? { prepend: [], drop: false } : await check(
      checks.body,
      "body",
      text,
      queueId,
    );
    for (const p of o.prepend) out.push(latin1(p));
    if (o.drop) continue;
    out.push(o.replace !== undefined ? latin1(o.replace) : l);
  }
  return out;
}

async function multipart(
  lines: MessageLine[],
  boundary: string,
  checks: SmtpChecks,
  queueId: string,
): Promise<MessageLine[]> {
  const delim = `--${boundary}`;
  const out: MessageLine[] = [];
  let part: MessageLine[] | undefined;
  let outside: MessageLine[] = [];
  const flushOutside = async () => {
    out.push(...await bodyLines(outside, checks, queueId));
    outside = [];
  };
  const flushPart = async () => {
    if (!part) return;
    const end = part.findIndex((l) => l.length === 0);
    const head = end < 0 ? part : part.slice(0, end);
    const h = await headerBlock(head, "multipart", checks, queueId);
    out.push(...h.lines);
    if (end >= 0) {
      // A part without Content-Type is text/plain (or message/rfc822 in a digest; not told apart).
      out.push(new Uint8Array(0), ...await bodyOf(part.slice(end + 1), h.type, checks, queueId));
    }
    part = undefined;
  };
  for (const line of lines) {
    const text = dec.decode(line).trimEnd();
    if (text === delim || text === `${delim}--`) {
      await flushPart();
      outside.push(line);
      await flushOutside();
      if (text === delim) part = [];
      continue;
    }
    if (part) part.push(line);
    else outside.push(line);
  }
  await flushPart();
  await flushOutside();
  return out;
}
