// Message text to queue-file records, as Postfix's sendmail converts its
// standard input: lines end at LF; a line longer than line_length_limit is
// cut into L (continued) records followed by a final N record; a CR before
// the LF is removed per sendmail_fix_line_endings; a lone "." ends the
// message unless -i; NUL bytes and bare CRs pass through unchanged (the
// record format is binary-safe). A header stage follows for sendmail -t: it
// collects To/Cc/Bcc recipients and drops Bcc headers.

import { extractAddresses } from "../address/mod.ts";

/** A text record: N ends a line, L is a fragment continued by the next record. */
export interface TextRecord {
  type: "N" | "L";
  data: Uint8Array;
}

/** Options for LineSplitter. */
export interface SplitOptions {
  /** line_length_limit (bytes per record). */
  lineLimit: number;
  /** sendmail_fix_line_endings: always, strict or never. */
  fixLineEndings: "always" | "strict" | "never";
  /** -i / -oi: a lone "." is text, not the end of input. */
  ignoreDot: boolean;
}

/** Cuts a byte stream into text records; see the module comment. */
export class LineSplitter {
  private frag: Uint8Array;
  private fragLen = 0;
  private continued = false;
  private firstLine = true;
  private stripCr: boolean;
  /** True once a lone "." line was seen (the rest of the input is ignored). */
  stopped = false;

  constructor(
    private readonly options: SplitOptions,
    private readonly emit: (r: TextRecord) => void,
  ) {
    this.frag = new Uint8Array(Math.max(options.lineLimit, 1));
    this.stripCr = options.fixLineEndings !== "never";
  }

  /** Feeds a chunk of input. */
  push(chunk: Uint8Array): void {
    const limit = this.frag.length;
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      const nl = chunk.indexOf(10, at);
      const end = nl < 0 ? chunk.length : nl;
      // Copy up to the newline, cutting an L record each time the fragment fills.
      while (at < end) {
        const take = Math.min(end - at, limit - this.fragLen);
        this.frag.set(chunk.subarray(at, at + take), this.fragLen);
        this.fragLen += take;
        at += take;
        if (this.fragLen === limit) this.output("L");
      }
      if (nl >= 0) {
        this.output("N");
        at = nl + 1;
      }
    }
  }

  /** Ends the input: a last line without a newline is still a line. */
  end(): void {
    if (!this.stopped && (this.fragLen > 0)) this.output("N", false);
  }

  private output(type: "N" | "L", sawNewline = true): void {
    let len = this.fragLen;
    if (type === "N" && sawNewline) {
      const crlf = len > 0 && this.frag[len - 1] === 13;
      if (this.firstLine && this.options.fixLineEndings === "strict") this.stripCr = crlf;
      if (crlf && this.stripCr) len--;
    }
    const data = this.frag.slice(0, len);
    this.fragLen = 0;
    if (type === "N") this.firstLine = false;
    if (
      type === "N" && !this.continued && !this.options.ignoreDot && len === 1 && data[0] === 46
    ) {
      this.stopped = true;
      return;
    }
    this.continued = type === "L";
    this.emit({ type, data });
  }
}

/** Postfix's is_header(): a name of printable non-colon characters, optional blanks, a colon. */
export function isHeaderStart(data: Uint8Array): boolean {
  let i = 0;
  while (i < data.length && data[i] > 32 && data[i] < 127 && data[i] !== 58) i++;
  if (i === 0) return false;
  while (i < data.length && (data[i] === 32 || data[i] === 9)) i++;
  return i < data.length && data[i] === 58;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/** The header stage's settings. */
export interface HeaderOptions {
  /** sendmail -t: collect recipients from To, Cc, Bcc (Resent-* when present) and drop Bcc. */
  extract: boolean;
  /** header_size_limit: past it, the rest is passed on as it is. */
  headerLimit: number;
}

/**
 * Buffers the header block so that -t can see whole headers, then passes
 * every record on unchanged except Bcc headers under -t.
 */
export class HeaderStage {
  private groups: TextRecord[][] = [];
  private buffered = 0;
  private inHeaders = true;
  private lastContinued = false;
  /** Recipients found in the headers (with -t). */
  readonly recipients: string[] = [];

  constructor(
    private readonly options: HeaderOptions,
    private readonly emit: (r: TextRecord) => void,
  ) {}

  /** Takes one record from the splitter. */
  push(record: TextRecord): void {
    if (!this.inHeaders) return this.emit(record);
    const startsLine = !this.lastContinued;
    this.lastContinued = record.type === "L";
    const current = this.groups[this.groups.length - 1];
    if (!startsLine && current) {
      current.push(record);
    } else if (isHeaderStart(record.data)) {
      this.groups.push([record]);
    } else if (current && (record.data[0] === 32 || record.data[0] === 9)) {
      current.push(record);
    } else {
      this.endHeaders();
      return this.emit(record);
    }
    this.buffered += record.data.length;
    if (this.buffered > this.options.headerLimit) this.endHeaders();
  }

  /** Ends the input (a message may be all headers). */
  end(): void {
    if (this.inHeaders) this.endHeaders();
  }

  private endHeaders(): void {
    this.inHeaders = false;
    const groups = this.groups;
    this.groups = [];
    const names = groups.map((g) => headerName(g[0].data));
    const resent = names.some((n) => n.startsWith("resent-"));
    const wanted = resent ? ["resent-to", "resent-cc", "resent-bcc"] : ["to", "cc", "bcc"];
    groups.forEach((group, i) => {
      if (this.options.extract && wanted.includes(names[i])) {
        this.recipients.push(...extractAddresses(headerValue(group)));
      }
      if (this.options.extract && (names[i] === "bcc" || names[i] === "resent-bcc")) return;
      for (const record of group) this.emit(record);
    });
  }
}

function headerName(data: Uint8Array): string {
  const text = latin1.decode(data.subarray(0, Math.min(data.length, 200)));
  return text.slice(0, text.indexOf(":")).trim().toLowerCase();
}

function headerValue(group: TextRecord[]): string {
  const text = group.map((r) => utf8.decode(r.data) + (r.type === "N" ? "\n" : "")).join("");
  return text.slice(text.indexOf(":") + 1);
}
