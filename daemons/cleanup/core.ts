// The message-processing core of cleanup(8): a record stream in (envelope,
// content, extracted information, as pickup, smtpd, qmqpd or bounce send
// it), a queue file and a completion status out. Pure apart from the
// lookups: no sockets, no files, so every rule is testable in process. The
// service front end (service.ts) creates the file, runs this, and commits.

import { RecordType } from "../../lib/queue/record.ts";
import {
  canonicalize,
  expandVirtual,
  ExpansionError,
  type RewriteRule,
  toCanonical,
} from "./addresses.ts";
import { Content } from "./content.ts";
import { QueueFileBuilder } from "./output.ts";
import { CleanupFlag, type CleanupSettings } from "./settings.ts";
import { CleanupStat, statusDetail } from "./status.ts";
import { verpDelimitersError } from "../../lib/verp.ts";
import type { CleanupTables } from "./tables.ts";

/** One input record: Postfix's type letter and its data. */
export interface InputRecord {
  type: string;
  data: Uint8Array;
}

/** What one message needs besides its records. */
export interface CleanupRequest {
  queueId: string;
  /** CLEANUP_FLAG_* bits from the client. */
  flags: number;
  settings: CleanupSettings;
  tables: CleanupTables;
  /** The queue file's creation time (create_time, Message-Id stamp). */
  now?: Date;
  /** Where log lines go (lib/log's info/warn in the daemon). */
  log: { info(text: string): void; warn(text: string): void };
}

/** The outcome of one message. */
export interface CleanupResult {
  /** CleanupStat bits; 0 is success. */
  status: number;
  /** The reason for a non-zero status (`5.7.1 message content rejected`), "" on success. */
  reason: string;
  /** The queue file to commit, or null when nothing is to be queued (error or DISCARD). */
  file: Uint8Array | null;
  /** The queue the file goes to: incoming, or hold after a HOLD action. */
  queue: "incoming" | "hold";
  /** Whether a DISCARD action claimed delivery without queueing. */
  discarded: boolean;
  /** Recipients written. */
  recipients: number;
  /**
   * A message refused for good that the client asked cleanup to bounce
   * (CLEANUP_FLAG_BOUNCE: sendmail/pickup, local forwarding, postsuper -r):
   * the complete queue file and what the non-delivery notice needs.
   */
  bounce?: CleanupBounce;
}

/** What cleanup bounces itself (see CleanupResult.bounce). */
export interface CleanupBounce {
  file: Uint8Array;
  recipients: {
    origRcpt: string;
    address: string;
    offset: number;
    dsnOrcpt: string;
    notify: number;
  }[];
  sender: string;
  envid: string;
  ret: number;
  encoding: string;
  smtputf8: number;
  /** Arrival, seconds since the epoch. */
  arrival: number;
}

/**
 * Refusals cleanup bounces when asked to (content, hop count, permission):
 * the queue file is still complete. A size, write or protocol failure has
 * no complete file to return, and no recipient means nobody to tell.
 */
const bounceable = CleanupStat.CONT | CleanupStat.HOPS | CleanupStat.NOPERM;

const decoder = new TextDecoder();
const text = (data: Uint8Array) => decoder.decode(data);

/** The recipient-related envelope state waiting for the next R record. */
interface Pending {
  orcpt?: string;
  dsnOrcpt?: string;
  notify: number;
}

/** Processes one message; see the file comment. */
export async function processMessage(
  records: AsyncIterable<InputRecord> | Iterable<InputRecord>,
  req: CleanupRequest,
): Promise<CleanupResult> {
  const state = new CleanupState(req);
  try {
    for await (const rec of records) {
      await state.feed(rec);
      if (state.ended) break;
    }
  } catch (err) {
    if (!(err instanceof BadInput)) throw err;
    state.fail(CleanupStat.BAD, "", err.message);
  }
  return state.finish();
}

/** A protocol error in the client's record stream. */
class BadInput extends Error {}

/** The state of one message (Postfix's CLEANUP_STATE). */
export class CleanupState {
  readonly out = new QueueFileBuilder();
  errs = 0;
  reason = "";
  ended = false;
  hold = false;
  discard = false;
  redirect = "";
  filter = "";
  encoding = "";
  /** The recipients written, for a bounce by cleanup itself. */
  private written: CleanupBounce["recipients"] = [];
  sender: string | undefined;
  /** The VERP delimiters of the message (V record), when it asked for VERP. */
  verpDelims: string | undefined;
  fullname = "";
  firstRecipient = "";
  recipients = 0;
  qmgrOpts = 0;
  /** SMTPUTF8 flags for the size record (requested 1, header 2, sender 4). */
  smtputf8 = 0;
  /**
   * The header rewrite context: "local", "remote" (remote_header_rewrite_domain
   * set), or none. A client that names none (qmqpd) is local, as in Postfix.
   */
  hdrRewrite: RewriteRule = "local";
  arrival: Date | undefined;
  /** Whether header/body checks still run (cleared by REJECT, DISCARD, PASS). */
  checking: boolean;
  private segment: "envelope" | "content" | "extracted" = "envelope";
  private started = false;
  private pending: Pending = { notify: 0 };
  private dups = new Set<string>();
  private bcc: string[] = [];
  private content: Content | undefined;
  private dataOffset = 0;
  private xtraOffset = 0;
  private clientInfo = new Map<string, string>();
  readonly now: Date;
  /** message_reject_characters and message_strip_characters, as bytes. */
  readonly rejectChars: number[];
  readonly stripChars: number[];

  constructor(readonly req: CleanupRequest) {
    this.now = req.now ?? new Date();
    this.rejectChars = unescapeBytes(req.settings.messageRejectCharacters);
    this.stripChars = unescapeBytes(req.settings.messageStripCharacters);
    this.checking = (req.flags & CleanupFlag.FILTER) !== 0;
    if (req.flags & CleanupFlag.HOLD) this.hold = true;
    if (req.flags & CleanupFlag.DISCARD) this.discard = true;
  }

  get settings(): CleanupSettings {
    return this.req.settings;
  }

  get id(): string {
    return this.req.queueId;
  }

  /** Whether output still matters (no error, not discarded). */
  get writing(): boolean {
    return this.errs === 0 && !this.discard;
  }

  /** Whether the refusal so far is one cleanup bounces itself (the file is kept complete). */
  private get bouncing(): boolean {
    return (this.req.flags & CleanupFlag.BOUNCE) !== 0 && this.errs !== 0 &&
      (this.errs & ~bounceable) === 0 && !this.discard;
  }

  /** Whether records still go to the file: while writing, or while bouncing. */
  private get output(): boolean {
    return this.writing || this.bouncing;
  }

  /** Records an error status and its reason (the first reason wins). */
  fail(stat: number, reason: string, warning = ""): void {
    if (warning) this.req.log.warn(`${this.id}: ${warning}`);
    if (this.errs === 0) {
      const d = statusDetail(stat);
      this.reason = reason || `${d.dsn} ${d.text}`;
    }
    this.errs |= stat;
  }

  /** The "from CLIENT; from=<S> to=<R>" part of an action log line. */
  private logContext(): string {
    const name = this.clientInfo.get("log_client_name") ?? this.clientInfo.get("client_name");
    const addr = this.clientInfo.get("log_client_address") ??
      this.clientInfo.get("client_address");
    const client = name || addr ? `${name ?? "unknown"}[${addr ?? "unknown"}]` : "local";
    let s = `from ${client}; from=<${this.sender ?? ""}>`;
    if (this.firstRecipient) s += ` to=<${this.firstRecipient}>`;
    const proto = this.clientInfo.get("log_protocol_name") ?? this.clientInfo.get("protocol_name");
    if (proto) s += ` proto=${proto}`;
    const helo = this.clientInfo.get("log_helo_name") ?? this.clientInfo.get("helo_name");
    if (helo) s += ` helo=<${helo}>`;
    return s;
  }

  /** Logs an action as Postfix's cleanup_act_log: `ID: ACTION: CLASS TEXT from ...: REASON`. */
  logAction(action: string, cls: string, content: string, reason: string): void {
    const tail = reason ? `: ${reason}` : "";
    this.req.log.info(
      `${this.id}: ${action}: ${cls} ${
        printable(content.slice(0, 200))
      } ${this.logContext()}${tail}`,
    );
  }

  /** Logs a plain info line prefixed by the queue id. */
  info(line: string): void {
    this.req.log.info(`${this.id}: ${line}`);
  }

  /** Logs a warning prefixed by the queue id. */
  warn(line: string): void {
    this.req.log.warn(`${this.id}: ${line}`);
  }

  /** Accepts one input record. */
  async feed(rec: InputRecord): Promise<void> {
    if (!this.started) this.start(rec);
    if (this.segment === "envelope") await this.envelope(rec);
    else if (this.segment === "content") await this.contentRecord(rec);
    else await this.extracted(rec);
  }

  /** Opens the file: size record, arrival time, create time, content filter. */
  private start(first: InputRecord): void {
    this.started = true;
    this.out.sizeRecord();
    if (first.type !== RecordType.TIME) {
      this.arrival = this.now;
      this.out.record(RecordType.TIME, timeValue(this.now));
    }
    this.createTimePending = first.type === RecordType.TIME;
    if (!this.createTimePending) this.writeCreateTime();
  }

  private createTimePending = false;
  /** The delay-warning time from the client's W record, if any. */
  private warnTime: number | undefined;
  private warnWritten = false;
  private traceFlagsSeen = false;

  /**
   * The W record, once, before the first recipient (where the reference
   * writes it): the client's value, else arrival + delay_warning_time,
   * in the fixed 15-character form qmgr rewrites in place.
   */
  private writeWarn(): void {
    if (this.warnWritten) return;
    this.warnWritten = true;
    let when = this.warnTime;
    if (when === undefined && this.settings.delayWarningTime > 0) {
      const arrival = Math.floor((this.arrival ?? this.now).getTime() / 1000);
      when = arrival + this.settings.delayWarningTime;
    }
    if (when !== undefined) this.out.record(RecordType.WARN, String(when).padStart(15, " "));
  }

  private writeCreateTime(): void {
    this.out.record(RecordType.ATTR, `create_time=${Math.floor(this.now.getTime() / 1000)}`);
    if (this.settings.contentFilter && this.checking) {
      this.out.record(RecordType.FILTER, this.settings.contentFilter);
    }
  }

  private async envelope(rec: InputRecord): Promise<void> {
    const data = text(rec.data);
    switch (rec.type) {
      case RecordType.TIME: {
        const secs = parseFloat(data.split(" ")[0]);
        this.arrival = Number.isFinite(secs) ? new Date(secs * 1000) : this.now;
        this.out.record(RecordType.TIME, rec.data);
        if (this.createTimePending) {
          this.createTimePending = false;
          this.writeCreateTime();
        }
        return;
      }
      case RecordType.ATTR:
        return this.attribute(rec, data);
      case RecordType.FULL:
        this.fullname = data;
        this.out.record(RecordType.FULL, rec.data);
        return;
      case RecordType.FROM:
        return await this.envelopeSender(data);
      case RecordType.ORCP:
        this.pending.orcpt = data;
        return;
      case RecordType.RCPT:
        return await this.recipient(data);
      case RecordType.MESG:
        return this.startContent();
      case RecordType.WARN: {
        // The first instance wins; written with the recipients (writeWarn).
        const value = Number(data.trim());
        if (this.warnTime === undefined && Number.isInteger(value)) this.warnTime = value;
        return;
      }
      case RecordType.VERP:
        return this.verpRequest(rec, data);
      case RecordType.FLGS: {
        // Request flags a client learns after opening the stream (smtpd's
        // HOLD or DISCARD result at a later RCPT): only those two apply.
        const flags = parseInt(data, 10) || 0;
        if (flags & CleanupFlag.HOLD) this.hold = true;
        if (flags & CleanupFlag.DISCARD) this.discard = true;
        return;
      }
      case RecordType.DSN_RET:
      case RecordType.DSN_ENVID:
      case RecordType.CTIME:
      case RecordType.INSPECT:
      case RecordType.FILTER:
      case RecordType.RDR:
        this.out.record(rec.type, rec.data);
        return;
      case RecordType.DSN_ORCPT:
        this.pending.dsnOrcpt = data;
        return;
      case RecordType.DSN_NOTIFY:
        this.pending.notify = parseInt(data, 10) || 0;
        return;
      default:
        throw new BadInput(`unexpected record type ${rec.type.charCodeAt(0)} in envelope`);
    }
  }

  /**
   * A VERP request: the first acceptable one is kept (later ones are
   * dropped); one before the sender or with the null sender, or with
   * delimiters verp_delimiter_filter refuses, is ignored with a warning.
   */
  private verpRequest(rec: InputRecord, data: string): void {
    if (this.verpDelims !== undefined) return;
    if (!this.sender) {
      this.warn("ignoring VERP request for null sender");
      return;
    }
    if (verpDelimitersError(data, this.settings.verpDelimiterFilter)) {
      this.warn(`ignoring bad VERP request: "${data.slice(0, 100)}"`);
      return;
    }
    this.verpDelims = data;
    this.out.record(RecordType.VERP, rec.data);
  }

  private attribute(rec: InputRecord, data: string): void {
    const eq = data.indexOf("=");
    if (eq <= 0) throw new BadInput(`bad attribute record: ${data.slice(0, 100)}`);
    const name = data.slice(0, eq);
    const value = data.slice(eq + 1);
    // Per-recipient DSN attributes belong to the next recipient, written with it.
    if (name === "notify_flags") {
      this.pending.notify = parseInt(value, 10) || 0;
      return;
    }
    if (name === "dsn_orig_rcpt") {
      this.pending.dsnOrcpt = value;
      return;
    }
    if (name === "rewrite_context") {
      // A remote client's headers are rewritten only with remote_header_rewrite_domain set.
      this.hdrRewrite = value === "local"
        ? "local"
        : value === "remote" && this.settings.remoteHeaderRewriteDomain
        ? "remote"
        : "";
    }
    if (name === "create_time") return;
    if (name === "trace_flags") {
      // Only the first, and only a number (the reference ignores others).
      if (!/^\d+$/.test(value)) {
        this.warn(`bad ${name} attribute value: ${value.slice(0, 100)}`);
        return;
      }
      if (this.traceFlagsSeen) return;
      this.traceFlagsSeen = true;
    }
    if (name === "smtputf8") {
      this.smtputf8 |= parseInt(value, 10) || 0;
      return;
    }
    this.clientInfo.set(name, value);
    if (this.segment === "envelope" || name !== "encoding") {
      this.out.record(RecordType.ATTR, rec.data);
    }
  }

  /** Notes non-ASCII text for SMTPUTF8 autodetection (the reference's flags). */
  noteUtf8(text: string | Uint8Array, flags: number): void {
    if ((this.req.flags & CleanupFlag.AUTOUTF8) === 0) return;
    for (let i = 0; i < text.length; i++) {
      const code = typeof text === "string" ? text.charCodeAt(i) : text[i];
      if (code > 0x7f) {
        this.smtputf8 |= flags;
        return;
      }
    }
  }

  private async envelopeSender(raw: string): Promise<void> {
    const s = this.settings;
    this.noteUtf8(raw, 1 | 4);
    const mapOk = (this.req.flags & CleanupFlag.MAP_OK) !== 0;
    const sender = raw === ""
      ? ""
      : await canonicalize(raw, "envelopeSender", s, this.req.tables, (t) => this.warn(t), mapOk);
    this.sender = sender;
    this.out.record(RecordType.FROM, sender);
    if ((this.req.flags & CleanupFlag.BCC_OK) && sender && this.req.tables.senderBcc) {
      const bcc = await this.req.tables.senderBcc(sender);
      if (bcc) this.bcc.push(...bcc.split(","));
    }
  }

  /** Processes one R record: canonical mapping, recipient BCC, virtual aliases, output. */
  private async recipient(raw: string): Promise<void> {
    if (this.segment === "envelope") this.writeWarn();
    const pending = this.pending;
    this.pending = { notify: 0 };
    const s = this.settings;
    this.noteUtf8(raw, 1);
    const mapOk = (this.req.flags & CleanupFlag.MAP_OK) !== 0;
    const addr = await canonicalize(
      raw,
      "envelopeRecipient",
      s,
      this.req.tables,
      (t) => this.warn(t),
      mapOk,
    );
    if (!this.firstRecipient) this.firstRecipient = addr;
    if ((this.req.flags & CleanupFlag.BCC_OK) && this.req.tables.recipientBcc) {
      const bcc = await this.req.tables.recipientBcc(addr);
      if (bcc) this.bcc.push(...bcc.split(","));
    }
    const orcpt = pending.orcpt ?? raw;
    // The DSN original recipient defaults to the address after canonical mapping
    // (the reference writes rfc822;ADDR with ADDR rewritten, O with it as received).
    await this.outRecipient(addr, orcpt, pending.dsnOrcpt ?? `rfc822;${addr}`, pending.notify);
  }

  /** Writes a recipient after virtual alias expansion and duplicate elimination. */
  private async outRecipient(
    addr: string,
    orcpt: string,
    dsnOrcpt: string,
    notify: number,
    bcc = false,
  ): Promise<void> {
    const s = this.settings;
    let targets = [addr];
    const virtual = this.req.tables.virtualAlias;
    if ((this.req.flags & CleanupFlag.MAP_OK) && virtual) {
      try {
        targets = await expandVirtual(addr, s, virtual, this.req.tables);
      } catch (err) {
        if (!(err instanceof ExpansionError)) throw err;
        this.fail(CleanupStat.DEFER, "4.6.0 Alias expansion error", err.message);
        return;
      }
    }
    for (const target of targets) {
      // Duplicates are found without regard to case, as the reference does.
      const key = `${dsnOrcpt}\n${notify}\n${orcpt}\n${target}`.toLowerCase();
      if (this.dups.has(key)) continue;
      if (this.dups.size < s.duplicateFilterLimit || s.duplicateFilterLimit === 0) {
        this.dups.add(key);
      }
      if (notify) this.out.record(RecordType.ATTR, `notify_flags=${notify}`);
      if (dsnOrcpt) this.out.record(RecordType.ATTR, `dsn_orig_rcpt=${dsnOrcpt}`);
      if (s.enableOriginalRecipient) this.out.record(RecordType.ORCP, orcpt);
      this.written.push({
        origRcpt: orcpt,
        address: target,
        offset: this.out.offset,
        dsnOrcpt,
        notify,
      });
      this.out.record(RecordType.RCPT, target);
      this.recipients++;
      // Automatic BCC recipients leave the size record's DSN flags alone (as the reference).
      if (!bcc) this.qmgrOpts |= notify << 1;
    }
  }

  private startContent(): void {
    if (this.sender === undefined) throw new BadInput("message has no sender record");
    if (this.createTimePending) {
      this.createTimePending = false;
      this.writeCreateTime();
    }
    this.writeWarn();
    this.out.record(RecordType.MESG, "");
    this.dataOffset = this.out.offset;
    this.segment = "content";
    this.content = new Content(this);
    // After an envelope error (alias expansion) the content is read but not
    // processed: the reference logs nothing more for such a message.
    this.skipContent = this.errs !== 0;
  }

  private partial: Uint8Array[] = [];
  private skipContent = false;

  private async contentRecord(rec: InputRecord): Promise<void> {
    const text = rec.type === RecordType.CONT || rec.type === RecordType.NORM;
    if (this.skipContent && (text || rec.type === RecordType.PTR_PAD)) return;
    if (rec.type === RecordType.CONT) {
      this.partial.push(rec.data);
      return;
    }
    if (rec.type === RecordType.NORM) {
      const line = this.partial.length ? concat([...this.partial, rec.data]) : rec.data;
      this.partial = [];
      return await this.content!.line(line);
    }
    if (rec.type === RecordType.PTR_PAD) return;
    if (rec.type === RecordType.XTRA) {
      if (this.partial.length) await this.content!.line(concat(this.partial));
      this.partial = [];
      if (!this.skipContent) await this.content!.end();
      this.xtraOffset = this.out.offset;
      this.out.record(RecordType.XTRA, "");
      if (this.filter) this.out.record(RecordType.FILTER, this.filter);
      if (this.redirect) this.out.record(RecordType.RDR, this.redirect);
      if (this.encoding) this.out.record(RecordType.ATTR, `encoding=${this.encoding}`);
      this.segment = "extracted";
      return;
    }
    throw new BadInput(`unexpected record type ${rec.type.charCodeAt(0)} in message content`);
  }

  /** Writes one content line (message text), honouring message_size_limit. */
  writeLine(line: Uint8Array): void {
    if (!this.output) return;
    const limit = this.settings.messageSizeLimit;
    if (limit > 0 && this.out.offset + line.length > limit) {
      this.fail(CleanupStat.SIZE, "", "queue file size limit exceeded");
      return;
    }
    this.out.line(line, this.settings.lineLengthLimit || 2048);
  }

  private async extracted(rec: InputRecord): Promise<void> {
    const data = text(rec.data);
    switch (rec.type) {
      case RecordType.RCPT:
        return await this.recipient(data);
      case RecordType.ORCP:
        this.pending.orcpt = data;
        return;
      case RecordType.ATTR:
        return this.attribute(rec, data);
      case RecordType.DSN_ORCPT:
        this.pending.dsnOrcpt = data;
        return;
      case RecordType.DSN_NOTIFY:
        this.pending.notify = parseInt(data, 10) || 0;
        return;
      case RecordType.FULL:
      case RecordType.INSPECT:
      case RecordType.FILTER:
      case RecordType.RDR:
      case RecordType.RRTO:
      case RecordType.ERTO:
      case RecordType.PRIO:
        this.out.record(rec.type, rec.data);
        return;
      case RecordType.END:
        await this.endMessage();
        return;
      default:
        throw new BadInput(`unexpected record type ${rec.type.charCodeAt(0)} in extracted segment`);
    }
  }

  /** Adds the BCC recipients, then the end record. */
  private async endMessage(): Promise<void> {
    const s = this.settings;
    this.ended = true;
    // Automatic BCC recipients do not make a message without recipients acceptable.
    if (this.recipients === 0 && this.errs === 0 && !this.discard) {
      this.fail(CleanupStat.RCPT, "5.1.0 no recipients specified");
      return;
    }
    const bccOk = (this.req.flags & CleanupFlag.BCC_OK) !== 0;
    const extra = [...this.bcc];
    if (bccOk && s.alwaysBcc) extra.unshift(s.alwaysBcc);
    for (const bcc of extra) {
      if (!this.output) break;
      const addr = await toCanonical(bcc.trim(), s, this.req.tables);
      // A BCC recipient is added as if with NOTIFY=NONE (always_bcc in postconf(5)).
      await this.outRecipient(addr, addr, "", 1, true);
    }
    this.out.record(RecordType.END, "");
  }

  /** Adds a BCC recipient from a header/body check action. */
  addBcc(addr: string): void {
    this.bcc.push(addr);
  }

  /** Applies the final checks and returns the result. */
  finish(): CleanupResult {
    // A client that goes away before the end record (smtpd after RSET, QUIT
    // or a timeout) abandons the message: nothing is queued and, as with
    // Postfix's cleanup, nothing is logged.
    if (!this.ended && this.errs === 0) this.fail(CleanupStat.BAD, "");
    const base = {
      status: this.errs,
      reason: this.reason,
      queue: this.hold ? "hold" as const : "incoming" as const,
      recipients: this.recipients,
    };
    if (this.errs !== 0) {
      if (!this.ended || !this.bouncing || this.written.length === 0) {
        return { ...base, file: null, discarded: false };
      }
      this.patchSize();
      return { ...base, file: null, discarded: false, bounce: this.bounceInfo() };
    }
    if (this.discard) return { ...base, file: null, discarded: true };
    this.patchSize();
    return { ...base, file: this.out.bytes(), discarded: false };
  }

  private patchSize(): void {
    const dataSize = this.xtraOffset - this.dataOffset;
    this.out.patchSize([
      dataSize,
      this.dataOffset,
      this.recipients,
      this.qmgrOpts,
      dataSize,
      this.smtputf8,
    ]);
  }

  private bounceInfo(): CleanupBounce {
    const arrival = (this.arrival ?? this.now).getTime() / 1000;
    return {
      file: this.out.bytes(),
      recipients: this.written,
      sender: this.sender ?? "",
      envid: this.clientInfo.get("envelope_id") ?? "",
      ret: parseInt(this.clientInfo.get("ret_flags") ?? "0", 10) || 0,
      encoding: this.encoding,
      smtputf8: this.smtputf8,
      arrival,
    };
  }
}

/** The bytes of a character-set parameter, C-like escapes undone (`\\0`, `\\t`, `\\r`, `\\ddd` ...). */
export function unescapeBytes(value: string): number[] {
  const simple: Record<string, number> = {
    a: 7,
    b: 8,
    f: 12,
    n: 10,
    r: 13,
    t: 9,
    v: 11,
    "\\": 92,
    '"': 34,
    "'": 39,
  };
  const out: number[] = [];
  const bytes = new TextEncoder().encode(value);
  for (let i = 0; i < bytes.length; i++) {
    const ch = String.fromCharCode(bytes[i]);
    if (ch !== "\\" || i + 1 >= bytes.length) {
      out.push(bytes[i]);
      continue;
    }
    const next = String.fromCharCode(bytes[++i]);
    if (next in simple) {
      out.push(simple[next]);
    } else if (/[0-7]/.test(next)) {
      let oct = next;
      while (oct.length < 3 && /[0-7]/.test(String.fromCharCode(bytes[i + 1] ?? 0))) {
        oct += String.fromCharCode(bytes[++i]);
      }
      out.push(parseInt(oct, 8) & 0xff);
    } else {
      out.push(bytes[i]);
    }
  }
  return out;
}

/** Log text as Postfix's printable() leaves it: control characters become `?`. */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, "?");
}

/** A T record value: `seconds microseconds`. */
function timeValue(when: Date): string {
  const ms = when.getTime();
  return `${Math.floor(ms / 1000)} ${(ms % 1000) * 1000}`;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
