// RFC 3464 delivery status notifications as Postfix's bounce(8) writes
// them: a multipart/report message with a human-readable part (the bounce
// template's text and one line per recipient), a message/delivery-status
// part (per-message and per-recipient fields), and the original message or
// its headers (message/rfc822 or text/rfc822-headers).

/** One recipient's entry in a report. */
export interface ReportRecipient {
  address: string;
  origRcpt: string;
  /** DSN ORCPT as given ("rfc822;addr"), "" when none. */
  dsnOrcpt: string;
  status: string;
  action: string;
  reason: string;
  diagType: string;
  diagText: string;
  mtaType: string;
  mtaName: string;
}

/** The template parts a report uses (bounce(5)). */
export interface ReportTemplate {
  charset: string;
  from: string;
  subject: string;
  postmasterSubject: string;
  /** The message text, $name expansions done. */
  text: string;
}

/** Everything one notice needs. */
export interface ReportInput {
  kind: "failure" | "delay" | "success" | "verify";
  template: ReportTemplate;
  /** A postmaster copy: postmaster subject, no template text, headers only. */
  postmasterCopy: boolean;
  queueId: string;
  myhostname: string;
  /** The original envelope sender. */
  sender: string;
  /** The notice's To: address. */
  to: string;
  arrival: Date;
  now: Date;
  envid: string;
  /** For delay notices: when the message will be returned. */
  retryUntil?: Date;
  recipients: ReportRecipient[];
  /** The original message: header lines, then body lines. */
  original: { headers: string[]; body: string[] } | null;
  /** Return the full message (true) or its headers only. */
  returnBody: boolean;
  /** Unique boundary; Postfix uses ID.TIME/HOSTNAME. */
  boundary: string;
  /** Content-Transfer-Encoding: 8bit on the message and its parts (8bit original or a non-ASCII charset). */
  eightBit: boolean;
}

const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An RFC 5322 date as Postfix's mail_date() writes it, in local time. */
export function rfc822Date(when: Date): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  const off = -when.getTimezoneOffset();
  const abs = Math.abs(off);
  const zone = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(when)
    .find((p) => p.type === "timeZoneName")?.value;
  const name = off === 0 && (zone === "GMT" || zone === "UTC" || !zone) ? "UTC" : zone;
  return `${days[when.getDay()]}, ${String(when.getDate()).padStart(2, " ")} ` +
    `${months[when.getMonth()]} ${when.getFullYear()} ` +
    `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())} ` +
    `${off < 0 ? "-" : "+"}${p2(Math.floor(abs / 60))}${p2(abs % 60)} (${name})`;
}

/** The human-readable line for one recipient: `<rcpt> (expanded from <orig>): reason`. */
export function recipientLine(r: ReportRecipient): string {
  const expanded = r.origRcpt && r.origRcpt !== r.address ? ` (expanded from <${r.origRcpt}>)` : "";
  return `<${r.address}>${expanded}: ${r.reason}`;
}

/** The Original-Recipient value: the DSN ORCPT, else the original recipient address. */
function originalRecipient(r: ReportRecipient): string {
  if (r.dsnOrcpt) return r.dsnOrcpt.includes(";") ? r.dsnOrcpt : `rfc822; ${r.dsnOrcpt}`;
  return r.origRcpt && r.origRcpt !== r.address ? `rfc822; ${r.origRcpt}` : "";
}

/** The per-recipient fields of the message/delivery-status part. */
export function recipientFields(r: ReportRecipient, retryUntil?: Date): string[] {
  const out = [`Final-Recipient: rfc822; ${r.address}`];
  const orig = originalRecipient(r);
  if (orig) out.push(`Original-Recipient: ${orig}`);
  out.push(`Action: ${r.action}`, `Status: ${r.status}`);
  if (r.mtaName) out.push(`Remote-MTA: ${r.mtaType || "dns"}; ${r.mtaName}`);
  const diag = r.diagText || r.reason;
  if (diag) out.push(`Diagnostic-Code: ${r.diagType || "X-Postfix"}; ${diag}`);
  if (retryUntil && r.action === "delayed") out.push(`Will-Retry-Until: ${rfc822Date(retryUntil)}`);
  return out;
}

/** The returned part's Content-Description, full and headers only (as the reference words them). */
const descriptions = {
  failure: ["Undelivered Message", "Undelivered Message Headers"],
  delay: ["Undelivered Message", "Undelivered Message Headers"],
  success: ["Message", "Message Headers"],
  verify: ["Message", "Message Headers"],
};

/** The notice as header and body lines (no line terminators), ready for N records. */
export function buildReport(input: ReportInput): string[] {
  const t = input.template;
  const b = input.boundary;
  const cte = input.eightBit ? ["Content-Transfer-Encoding: 8bit"] : [];
  const out: string[] = [
    `Date: ${rfc822Date(input.now)}`,
    `From: ${t.from}`,
    `Subject: ${input.postmasterCopy ? t.postmasterSubject : t.subject}`,
    `To: ${input.to}`,
    // RFC 3834: a reply to the sender, or a notice of the system's own.
    `Auto-Submitted: ${input.postmasterCopy ? "auto-generated" : "auto-replied"}`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type=delivery-status;`,
    `\tboundary="${b}"`,
  ];
  out.push(...cte, "", "This is a MIME-encapsulated message.", "");
  // The human-readable part.
  out.push(
    `--${b}`,
    `Content-Description: Notification`,
    `Content-Type: text/plain; charset=${t.charset}`,
    ...cte,
    "",
  );
  // Postmaster copies leave the template text out (bounce(5)).
  if (!input.postmasterCopy) out.push(...t.text.replace(/\n$/, "").split("\n"));
  out.push("");
  for (const r of input.recipients) out.push(recipientLine(r), "");
  // The machine-readable part (RFC 3464 section 2).
  out.push(
    `--${b}`,
    `Content-Description: Delivery report`,
    `Content-Type: message/delivery-status`,
    "",
    `Reporting-MTA: dns; ${input.myhostname}`,
    `X-Postfix-Queue-ID: ${input.queueId}`,
    `X-Postfix-Sender: rfc822; ${input.sender}`,
  );
  if (input.envid) out.push(`Original-Envelope-Id: ${input.envid}`);
  out.push(`Arrival-Date: ${rfc822Date(input.arrival)}`);
  for (const r of input.recipients) out.push("", ...recipientFields(r, input.retryUntil));
  out.push("");
  // The returned message or its headers.
  if (input.original) {
    const full = input.returnBody && !input.postmasterCopy;
    const [whole, headers] = descriptions[input.kind];
    out.push(
      `--${b}`,
      `Content-Description: ${full ? whole : headers}`,
      `Content-Type: ${full ? "message/rfc822" : "text/rfc822-headers"}`,
      ...cte,
      "",
      `Return-Path: <${input.sender}>`,
      ...input.original.headers,
    );
    if (full) out.push("", ...input.original.body);
    out.push("");
  }
  out.push(`--${b}--`);
  return out;
}
