// Postfix's per-recipient delivery log line, written by delivery agents and
// by qmgr for recipients it handles itself:
//
//   ID: to=<rcpt>, orig_to=<orig>, relay=R, delay=D, delays=a/b/c/d,
//       dsn=X.Y.Z, status=sent (text)
//
// delay is the time since arrival; delays splits it into before the queue
// manager (a), in the queue manager (b), connection setup (c) and
// transmission (d). Sub-second values keep at most
// delay_logging_resolution_limit digits after the point.

/** The times a delivery's delays= fields are measured from (seconds since the epoch). */
export interface DeliveryTimes {
  /** Message arrival (the T record). */
  arrival: number;
  /** When qmgr moved the message into the active queue. */
  active: number;
  /** When the delivery agent received the request. */
  agentStart: number;
  /** When the agent's connection was set up (agentStart when there is none). */
  connSetup: number;
}

/** Formats one delay value as Postfix does: integers from 10 s, two significant digits below. */
export function formatDelay(seconds: number, resolution = 2): string {
  const x = Math.max(0, seconds);
  if (x >= 10) return String(Math.round(x));
  const digits = Math.max(0, Math.min(resolution, 6));
  let text = x.toPrecision(2);
  if (text.includes("e")) text = x.toFixed(digits);
  const point = text.indexOf(".");
  if (point >= 0 && text.length - point - 1 > digits) text = x.toFixed(digits);
  if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return text === "" || Number(text) === 0 ? "0" : text;
}

/** delay= and delays= for a delivery that ends at `now`. */
export function formatDelays(times: DeliveryTimes, now: number, resolution = 2): string {
  const a = times.active - times.arrival;
  const b = times.agentStart - times.active;
  const c = times.connSetup - times.agentStart;
  const d = now - times.connSetup;
  const f = (v: number) => formatDelay(v, resolution);
  return `delay=${f(now - times.arrival)}, delays=${f(a)}/${f(b)}/${f(c)}/${f(d)}`;
}

/** What one log line says about one recipient. */
export interface DeliveryLogEntry {
  queueId: string;
  recipient: string;
  origRecipient?: string;
  relay: string;
  times: DeliveryTimes;
  dsn: string;
  /** sent, deferred, bounced, expired, undeliverable, deliverable. */
  status: string;
  text: string;
}

/** The log line, without the syslog prefix. */
export function deliveryLogLine(entry: DeliveryLogEntry, now: number, resolution = 2): string {
  const orig = entry.origRecipient && entry.origRecipient !== entry.recipient
    ? `, orig_to=<${entry.origRecipient}>`
    : "";
  return `${entry.queueId}: to=<${entry.recipient}>${orig}, relay=${entry.relay}, ` +
    `${formatDelays(entry.times, now, resolution)}, dsn=${entry.dsn}, ` +
    `status=${entry.status} (${entry.text})`;
}
