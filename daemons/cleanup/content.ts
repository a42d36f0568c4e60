// Message content in cleanup(8): primary headers (checks, address
// rewriting, missing headers, Bcc removal, hop count, message-id logging),
// the MIME structure (part headers, attached messages, nesting and
// encoding-domain checks, 8-bit detection) and body lines (body_checks).

import {
  formatAddressPieces,
  formatPhrase,
  listMailboxes,
  parseAddressList,
  quoteAddress,
} from "../../lib/address/mod.ts";
import { canonicalize } from "./addresses.ts";
import { runCheck } from "./checks.ts";
import { type CleanupState, printable } from "./core.ts";
import { headerInfo, mailDate, makeMessageId, splitHeader } from "./headers.ts";
import { CleanupFlag } from "./settings.ts";
import { CleanupStat } from "./status.ts";

/** A content line as bytes. */
export type Line = Uint8Array;

/** Which header block a header is in (Postfix's MIME_HDR_*). */
type HeaderClass = "primary" | "multipart" | "nested";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether any byte is 8-bit. */
function has8bit(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) if (line[i] & 0x80) return true;
  return false;
}

/** The type/subtype and boundary of a Content-Type value. */
function contentType(value: string): { type: string; boundary: string } {
  const m = /^\s*([^/\s;]+)\s*\/\s*([^\s;]+)/.exec(value);
  const b = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(value);
  return {
    type: m ? `${m[1]}/${m[2]}`.toLowerCase() : "",
    boundary: b ? (b[1] ?? b[2]) : "",
  };
}

/** The MIME facts gathered from one header block. */
interface BlockInfo {
  type: string;
  boundary: string;
  encoding: string;
}

/** The content state machine of one message. */
export class Content {
  private mode: "headers" | "body" = "headers";
  private cls: HeaderClass = "primary";
  private header: Line[] = [];
  private headerBytes = 0;
  private block: BlockInfo = { type: "", boundary: "", encoding: "" };
  private boundaries: string[] = [];
  private depth = 0;
  private bodyBytes = 0;
  private bodyEncoding = "";
  private seen = new Set<string>();
  private resent = false;
  private hops = 0;
  private primaryDone = false;

  constructor(private readonly state: CleanupState) {}

  private get mime(): boolean {
    return !this.state.settings.disableMimeInputProcessing;
  }

  /** Accepts one content line (record data, no newline). */
  async line(raw: Line): Promise<void> {
    const line = this.stripCharacters(this.rejectCharacters(this.sanitize(raw)));
    if (this.mode === "headers") {
      const first = line[0];
      if (this.header.length > 0 && (first === 0x20 || first === 0x09)) {
        // header_size_limit: the excess of a long header is discarded, mid-line if need be.
        const room = this.state.settings.headerSizeLimit - this.headerBytes - 1;
        if (room > 0) {
          const kept = line.length > room ? line.subarray(0, room) : line;
          this.header.push(kept);
          this.headerBytes += 1 + kept.length;
        }
        return;
      }
      await this.flushHeader();
      if (line.length > 0 && splitHeader(decoder.decode(line.subarray(0, 200)))) {
        const limit = this.state.settings.headerSizeLimit;
        this.header = [line.length > limit ? line.subarray(0, limit) : line];
        this.headerBytes = this.header[0].length;
        return;
      }
      this.endHeaders(line.length === 0);
      if (line.length === 0) {
        this.state.writeLine(line);
        return;
      }
    }
    await this.bodyLine(line);
  }

  /** Replaces stray CR and LF (cleanup_replace_stray_cr_lf). */
  private sanitize(line: Line): Line {
    if (!this.state.settings.cleanupReplaceStrayCrLf) return line;
    let copy: Uint8Array | undefined;
    for (let i = 0; i < line.length; i++) {
      if (line[i] === 0x0d || line[i] === 0x0a) {
        copy ??= line.slice();
        copy[i] = 0x20;
      }
    }
    return copy ?? line;
  }

  /**
   * message_reject_characters: a line holding one refuses the message (the
   * first such line is logged, as text up to a NUL, the way C prints it).
   */
  private rejectCharacters(line: Line): Line {
    const st = this.state;
    const chars = st.rejectChars;
    if (chars.length === 0 || !line.some((b) => chars.includes(b))) return line;
    if (st.writing) {
      const nul = line.indexOf(0);
      const text = decoder.decode(nul < 0 ? line : line.subarray(0, nul));
      st.logAction("reject", "content", text, "5.7.1 disallowed character");
    }
    st.fail(CleanupStat.CONT, "5.7.1 disallowed character");
    return line;
  }

  /** message_strip_characters: those bytes are removed from every content line. */
  private stripCharacters(line: Line): Line {
    const chars = this.state.stripChars;
    if (chars.length === 0 || !line.some((b) => chars.includes(b))) return line;
    return line.filter((b) => !chars.includes(b));
  }

  /** Processes the header collected so far, if any. */
  private async flushHeader(): Promise<void> {
    if (this.header.length === 0) return;
    const lines = this.header;
    this.header = [];
    await this.processHeader(lines.map((l) => decoder.decode(l)).join("\n"), lines);
  }

  /** One logical header: checks, MIME facts, then (primary) the header rules. */
  private async processHeader(text: string, lines: Line[]): Promise<void> {
    const st = this.state;
    const parsed = splitHeader(text)!;
    const info = headerInfo(parsed.name);
    const lower = parsed.name.toLowerCase();
    for (const l of lines) st.noteUtf8(l, 1 | 2);
    if (this.mime) this.mimeHeader(lower, parsed.value, lines);
    const isMime = this.mime && info.mime;
    const t = st.req.tables;
    const [table, mapClass] = isMime || this.cls === "multipart"
      ? [t.mimeHeaderChecks, "mime_header_checks"] as const
      : this.cls === "nested"
      ? [t.nestedHeaderChecks, "nested_header_checks"] as const
      : [t.headerChecks, "header_checks"] as const;
    const verdict = await runCheck(st, table, mapClass, "header", text);
    if (verdict === "drop") return;
    if (typeof verdict === "object" && "prepend" in verdict) {
      this.writeText(verdict.prepend);
    }
    let out = text;
    let outLines: Line[] | null = lines;
    if (typeof verdict === "object" && "replace" in verdict) {
      out = verdict.replace;
      outLines = null;
    }
    if (this.cls !== "primary") return this.emit(out, outLines);
    await this.primaryHeader(out, outLines);
  }

  /** The rules for a primary message header. */
  private async primaryHeader(text: string, lines: Line[] | null): Promise<void> {
    const st = this.state;
    const parsed = splitHeader(text);
    if (!parsed) return this.emit(text, lines);
    const lower = parsed.name.toLowerCase();
    const info = headerInfo(parsed.name);
    this.seen.add(lower);
    if (info.resent) this.resent = true;
    // The limit is reached at hopcount_limit Received headers (pickup's and smtpd's own included).
    if (lower === "received" && ++this.hops >= st.settings.hopcountLimit) {
      st.warn("message rejected: hopcount exceeded");
      st.fail(CleanupStat.HOPS, "");
    }
    if ((lower === "message-id" || lower === "resent-message-id") && !st.discard) {
      st.info(`${lower}=${parsed.value.trim()}`);
    }
    if (info.remove) return;
    if (info.sender || info.recipient) {
      const rewritten = await this.rewriteAddresses(parsed.name, parsed.value, !!info.sender);
      if (rewritten !== null) return this.emit(rewritten, null);
    }
    this.emit(text, lines);
  }

  /**
   * Rewrites the addresses of a sender or recipient header; returns the new
   * header text, or null when nothing changed (the header is kept as written).
   */
  private async rewriteAddresses(
    name: string,
    value: string,
    sender: boolean,
  ): Promise<string | null> {
    const st = this.state;
    const s = st.settings;
    const mapOk = (st.req.flags & CleanupFlag.MAP_OK) !== 0;
    const cls = sender ? "headerSender" : "headerRecipient";
    if (!st.hdrRewrite && !mapOk) return null;
    const list = parseAddressList(value, { tokenLimit: s.headerAddressTokenLimit });
    let changed = false;
    for (const box of listMailboxes(list)) {
      if (box.address === "" && box.source === "") continue;
      const next = await canonicalize(
        box.address,
        cls,
        s,
        st.req.tables,
        (t) => st.warn(t),
        mapOk,
        st.hdrRewrite,
      );
      // A header is printed anew when an address reads differently in external
      // form (the reference also re-quotes an address that needs it).
      if (quoteAddress(next) !== box.source) changed = true;
      box.address = next;
    }
    return changed ? foldHeader(`${name}:`, formatAddressPieces(list)) : null;
  }

  /** Records MIME facts from a header of the current block. */
  private mimeHeader(lower: string, value: string, lines: Line[]): void {
    const st = this.state;
    if (lower === "content-type") {
      const ct = contentType(value);
      this.block.type = ct.type;
      this.block.boundary = ct.boundary.slice(0, st.settings.mimeBoundaryLengthLimit);
    } else if (lower === "content-transfer-encoding") {
      this.block.encoding = value.trim().toLowerCase();
      if (this.block.encoding === "8bit" || this.block.encoding === "binary") {
        st.encoding = "8bit";
      }
    }
    if (st.settings.strict7bitHeaders && lines.some(has8bit)) {
      this.mimeError("improper use of 8-bit data in message header", lines[0]);
    }
  }

  /** A MIME structure error: the message is rejected, as Postfix's strict_* settings ask. */
  private mimeError(text: string, context: Uint8Array | string): void {
    const st = this.state;
    const what = typeof context === "string" ? context : decoder.decode(context);
    if (st.writing) {
      st.info(
        `reject: mime-error ${text}: ${printable(what.slice(0, 100))} from local; ` +
          `from=<${st.sender ?? ""}>` +
          (st.firstRecipient ? ` to=<${st.firstRecipient}>` : ""),
      );
    }
    st.fail(CleanupStat.CONT, `5.6.0 ${text}`);
  }

  /** The end of a header block; `blank` when an empty line ended it. */
  private endHeaders(blank: boolean): void {
    if (this.cls === "primary" && !this.primaryDone) {
      this.primaryDone = true;
      this.addMissingHeaders();
      // A body that starts without the empty separator line gets one.
      if (!blank) this.state.writeLine(new Uint8Array());
    }
    this.mode = "body";
    this.bodyBytes = 0;
    const block = this.block;
    this.bodyEncoding = block.encoding;
    if (!this.mime) return;
    const domainOk = ["", "7bit", "8bit", "binary"].includes(block.encoding);
    const composite = block.type.startsWith("multipart/") || block.type.startsWith("message/");
    if (composite && !domainOk && this.state.settings.strictMimeEncodingDomain) {
      this.mimeError("invalid message/* or multipart/* encoding domain", block.encoding);
    }
    // Past the nesting limit the reference neither rejects nor follows the structure.
    if (block.type.startsWith("multipart/") && block.boundary) {
      if (this.nest()) this.boundaries.push(block.boundary);
    } else if (block.type === "message/rfc822") {
      if (this.nest()) {
        this.mode = "headers";
        this.cls = "nested";
      }
    }
    this.block = { type: "", boundary: "", encoding: "" };
  }

  /** Enters a nested part; false past mime_nesting_limit, where structure is no longer followed. */
  private nest(): boolean {
    return ++this.depth <= this.state.settings.mimeNestingLimit;
  }

  /** The headers cleanup adds when the message lacks them. */
  private addMissingHeaders(): void {
    const st = this.state;
    const s = st.settings;
    // A discarded message gets nothing more (and logs no message-id).
    if (st.discard || (!st.hdrRewrite && !s.alwaysAddMissingHeaders)) return;
    const r = this.resent ? "resent-" : "";
    const R = this.resent ? "Resent-" : "";
    if (!this.seen.has(`${r}message-id`)) {
      const id = makeMessageId(st.now, st.id, s.myhostname);
      this.writeText(`${R}Message-Id: ${id}`);
      st.info(`${r}message-id=${id}`);
    }
    if (!this.seen.has(`${r}date`)) this.writeText(`${R}Date: ${mailDate(st.arrival ?? st.now)}`);
    if (!this.seen.has(`${r}from`)) this.writeText(`${R}From: ${this.fromValue()}`);
    const rcptHeaders = ["to", "cc", "bcc"].map((h) => r + h);
    if (s.undisclosedRecipientsHeader && !rcptHeaders.some((h) => this.seen.has(h))) {
      this.writeText(s.undisclosedRecipientsHeader);
    }
  }

  /** The value of an added From: header (header_from_format). */
  private fromValue(): string {
    const st = this.state;
    const sender = st.sender ?? "";
    if (sender === "") return "MAILER-DAEMON";
    const addr = quoteAddress(sender);
    if (!st.fullname) return addr;
    if (st.settings.headerFromFormat === "obsolete") return `${addr} (${st.fullname})`;
    return `${formatPhrase(st.fullname)} <${addr}>`;
  }

  /** One body line: MIME boundaries, part headers, body_checks. */
  private async bodyLine(line: Line): Promise<void> {
    const st = this.state;
    if (this.mime && this.boundaries.length && line[0] === 0x2d && line[1] === 0x2d) {
      const text = decoder.decode(line);
      for (let i = this.boundaries.length - 1; i >= 0; i--) {
        const b = this.boundaries[i];
        if (!text.startsWith(`--${b}`)) continue;
        const closing = text.startsWith(`--${b}--`);
        this.boundaries.length = closing ? i : i + 1;
        st.writeLine(line);
        this.mode = closing ? "body" : "headers";
        this.cls = "multipart";
        this.bodyBytes = 0;
        return;
      }
    }
    if (
      st.settings.strict8bitmimeBody && this.mime && has8bit(line) &&
      this.bodyEncoding !== "8bit" && this.bodyEncoding !== "binary"
    ) {
      this.mimeError("improper use of 8-bit data in message body", line);
    }
    const table = st.req.tables.bodyChecks;
    if (table && st.checking && this.bodyBytes < st.settings.bodyChecksSizeLimit) {
      this.bodyBytes += line.length + 1;
      const verdict = await runCheck(st, table, "body_checks", "body", decoder.decode(line));
      if (verdict === "drop") return;
      if (typeof verdict === "object" && "prepend" in verdict) this.writeText(verdict.prepend);
      if (typeof verdict === "object" && "replace" in verdict) {
        return this.writeText(verdict.replace);
      }
    }
    st.writeLine(line);
  }

  /** The end of the content (X record). */
  async end(): Promise<void> {
    if (this.mode === "headers") {
      await this.flushHeader();
      this.endHeaders(true);
    }
  }

  private emit(text: string, lines: Line[] | null): void {
    if (lines) { for (const l of lines) this.state.writeLine(l); }
    else this.writeText(text);
  }

  /** Writes text (possibly several lines) as content lines. */
  private writeText(text: string): void {
    for (const l of text.split("\n")) this.state.writeLine(encoder.encode(l));
  }
}

/** Lines of a rewritten address header are kept under this many characters. */
const FOLD_WIDTH = 70;

/**
 * Joins address pieces into a header, starting a continuation line (a tab)
 * before a piece that would make the line reach FOLD_WIDTH characters, as
 * the reference folds the address headers it rewrites.
 */
export function foldHeader(label: string, pieces: string[]): string {
  let text = label;
  let line = label.length;
  let empty = true;
  for (const piece of pieces) {
    if (!empty && line + 1 + piece.length >= FOLD_WIDTH) {
      text += "\n\t" + piece;
      line = 1 + piece.length;
    } else {
      text += " " + piece;
      line += 1 + piece.length;
    }
    empty = false;
  }
  return text;
}
