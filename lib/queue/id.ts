// Queue ids, short and long (enable_long_queue_ids), as Postfix makes them.
//
// Short: the microseconds as 5 upper-case hex digits, then the inode number
// in upper-case hex (`8045F2AB23`). Long: the seconds in base 52 (at least 6
// digits), the microseconds in base 52 (exactly 4), `z`, then the inode in
// base 51 (`4jYmpD3YgRzJ9Dc`). The digit alphabet has no vowels, so an id
// never spells a word; `z` is the 52nd digit and never appears in an inode.

/** The base-52 alphabet of long queue ids. */
export const longIdAlphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

const longDigitValue = new Map([...longIdAlphabet].map((ch, i) => [ch, i]));

/** Writes `value` in `base` with the long-id alphabet, at least `width` digits. */
function toLongDigits(value: number, base: number, width: number): string {
  let out = "";
  let rest = Math.floor(value);
  do {
    out = longIdAlphabet[rest % base] + out;
    rest = Math.floor(rest / base);
  } while (rest > 0);
  return out.padStart(width, "0");
}

function fromLongDigits(text: string, base: number): number {
  let value = 0;
  for (const ch of text) {
    const digit = longDigitValue.get(ch);
    if (digit === undefined || digit >= base) return NaN;
    value = value * base + digit;
  }
  return value;
}

/** A short queue id from the microseconds of the creation time and the file's inode. */
export function shortQueueId(usec: number, inode: number | bigint): string {
  const hexUsec = Math.floor(usec).toString(16).toUpperCase().padStart(5, "0");
  return hexUsec + BigInt(inode).toString(16).toUpperCase();
}

/** A long queue id from the creation time (seconds, microseconds) and the inode. */
export function longQueueId(seconds: number, usec: number, inode: number | bigint): string {
  return toLongDigits(seconds, 52, 6) + toLongDigits(usec, 52, 4) + "z" +
    toLongDigits(Number(inode), 51, 1);
}

/** The parts of a queue id. */
export interface QueueIdParts {
  long: boolean;
  /** Microseconds of the creation time (0–999999). */
  usec: number;
  /** Seconds of the creation time (long ids only). */
  seconds?: number;
  /** The inode number the id encodes. */
  inode: number;
}

const shortPattern = /^[0-9A-F]{6,}$/;
// Seconds and microseconds use all 52 digits (z included); the inode uses 51
// (no z), so the last z is the separator.
const d52 = "[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]";
const d51 = "[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]";
const longPattern = new RegExp(`^(${d52}{6,})(${d52}{4})z(${d51}+)$`);
/^([0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]{6,})([0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]{4})z([0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+)$/;

/** Whether `id` is a well-formed short queue id. */
export function isShortQueueId(id: string): boolean {
  return shortPattern.test(id) && parseInt(id.slice(0, 5), 16) < 1000000;
}

/** Whether `id` is a well-formed long queue id. */
export function isLongQueueId(id: string): boolean {
  const m = longPattern.exec(id);
  if (!m) return false;
  return fromLongDigits(m[2], 52) < 1000000 && !Number.isNaN(fromLongDigits(m[3], 51));
}

/** Whether `id` is a valid queue id of either form (Postfix's mail_queue_id_ok, stricter). */
export function isQueueId(id: string): boolean {
  return id.length > 0 && id.length <= 100 && (isShortQueueId(id) || isLongQueueId(id));
}

/** Splits a queue id into its parts; null when it is neither form. */
export function parseQueueId(id: string): QueueIdParts | null {
  if (isShortQueueId(id)) {
    return { long: false, usec: parseInt(id.slice(0, 5), 16), inode: parseInt(id.slice(5), 16) };
  }
  const m = longPattern.exec(id);
  if (!m || !isLongQueueId(id)) return null;
  return {
    long: true,
    seconds: fromLongDigits(m[1], 52),
    usec: fromLongDigits(m[2], 52),
    inode: fromLongDigits(m[3], 51),
  };
}

/**
 * The characters hashed subdirectories are named after: the microseconds as 5
 * upper-case hex digits, for both id forms (so long ids spread as short ones do).
 */
export function queueIdHashKey(id: string): string {
  const parts = parseQueueId(id);
  if (parts) return parts.usec.toString(16).toUpperCase().padStart(5, "0");
  return id.toUpperCase();
}
