// The Received: header an SMTP server prepends (RFC 5321 4.4), in Postfix's
// layout, and the RFC 5322 date it ends with.

const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const p2 = (n: number) => String(n).padStart(2, "0");

/** Made once: building a DateTimeFormat costs ~0.1 ms, the largest cost in smtpd's own code. */
const zoneFormat = Intl.DateTimeFormat("en-US", { timeZoneName: "short" });

/** `Tue, 24 Nov 2026 15:55:21 +0000 (UTC)` in local time (day of month space-padded). */
export function rfc5322Date(when: Date): string {
  const off = -when.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  const zone = zoneFormat.formatToParts(when).find((p) => p.type === "timeZoneName")?.value ??
    "UTC";
  return `${days[when.getDay()]}, ${String(when.getDate()).padStart(2, " ")} ` +
    `${months[when.getMonth()]} ${when.getFullYear()} ` +
    `${p2(when.getHours())}:${p2(when.getMinutes())}:${p2(when.getSeconds())} ` +
    `${sign}${p2(Math.floor(abs / 60))}${p2(abs % 60)} (${zone})`;
}

/** What the Received: header names. */
export interface ReceivedInfo {
  helo: string;
  clientName: string;
  clientAddr: string;
  byHost: string;
  mailName: string;
  protocol: string;
  queueId: string;
  /** The single recipient, named in a `for` clause; omitted with several. */
  recipient?: string;
  when: Date;
}

/** The header as its lines (first line with the field name, the rest tab-indented). */
export function receivedHeader(r: ReceivedInfo): string[] {
  const addr = r.clientAddr.includes(":") ? `IPv6:${r.clientAddr}` : r.clientAddr;
  const lines = [
    `Received: from ${r.helo || r.clientName} (${r.clientName} [${addr}])`,
  ];
  const date = rfc5322Date(r.when);
  const by = `\tby ${r.byHost} (${r.mailName}) with ${r.protocol} id ${r.queueId}`;
  if (r.recipient !== undefined) {
    lines.push(by);
    lines.push(`\tfor <${r.recipient}>; ${date}`);
  } else {
    lines.push(`${by};`);
    lines.push(`\t${date}`);
  }
  return lines;
}
