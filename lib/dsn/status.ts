// DSN status helpers (RFC 3463 enhanced status codes, RFC 3464 actions):
// parsing a "X.Y.Z text" reason, the action a status implies, and the
// NOTIFY flags a recipient carries (Postfix's DSN_NOTIFY_* bits).

/** RFC 3461 NOTIFY bits as Postfix stores them in the n record. */
export const DsnNotify = {
  NEVER: 1 << 0,
  SUCCESS: 1 << 1,
  FAILURE: 1 << 2,
  DELAY: 1 << 3,
} as const;

/** RFC 3461 RET values as Postfix stores them in the < record. */
export const DsnRet = { FULL: 1, HDRS: 2 } as const;

/** A delivery status: enhanced code, RFC 3464 action and human text. */
export interface DsnStatus {
  /** X.Y.Z. */
  status: string;
  /** delivered, failed, delayed, relayed, expanded. */
  action: string;
  /** The reason text (no status code). */
  reason: string;
  /** Diagnostic-Code type (`smtp`, `X-Postfix`), empty for none. */
  diagType?: string;
  /** Diagnostic-Code text. */
  diagText?: string;
  /** Remote-MTA type and name, empty for none. */
  mtaType?: string;
  mtaName?: string;
}

const codePattern = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

/** Whether `text` is an enhanced status code X.Y.Z. */
export function isDsnCode(text: string): boolean {
  return /^[245]\.\d{1,3}\.\d{1,3}$/.test(text);
}

/**
 * Splits "4.1.1 text" into code and text; without a leading code the
 * default code is used (the error and discard agents' next-hop convention).
 */
export function splitDsnText(text: string, defaultCode: string): { code: string; text: string } {
  const m = codePattern.exec(text);
  if (!m) return { code: defaultCode, text };
  return { code: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) };
}

/** The RFC 3464 action for a status class when delivery ended as `kind`. */
export function actionFor(kind: "sent" | "bounced" | "deferred"): string {
  return kind === "sent" ? "delivered" : kind === "bounced" ? "failed" : "delayed";
}

/** Parses an n record / notify_flags value; 0 means "not specified". */
export function parseNotify(value: string): number {
  const n = parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** Whether a recipient wants a notice of this kind (unspecified NOTIFY: failure and delay). */
export function wantsNotice(notify: number, kind: "success" | "failure" | "delay"): boolean {
  if (notify === 0) return kind !== "success";
  if (notify & DsnNotify.NEVER) return false;
  const bit = kind === "success"
    ? DsnNotify.SUCCESS
    : kind === "failure"
    ? DsnNotify.FAILURE
    : DsnNotify.DELAY;
  return (notify & bit) !== 0;
}
