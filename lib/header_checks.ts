// Header and body check actions, as header_checks(5) defines them: a table
// result such as `REJECT text` or `PREPEND X-Tag: 1` parsed into an action
// that the message processor applies. Parsing is separate from applying so
// that each action can be tested on its own. Shared by cleanup
// (header_checks, body_checks) and the smtp client (smtp_header_checks,
// smtp_body_checks), which applies a restricted set.

/** An action name header_checks(5) knows. */
export type ActionName =
  | "BCC"
  | "DISCARD"
  | "DUNNO"
  | "FILTER"
  | "HOLD"
  | "IGNORE"
  | "INFO"
  | "PASS"
  | "PREPEND"
  | "REDIRECT"
  | "REPLACE"
  | "REJECT"
  | "STRIP"
  | "WARN";

/** A parsed table result. */
export interface CheckAction {
  name: ActionName;
  /** The text after the action name, leading white space removed. */
  text: string;
}

const known = new Set<string>([
  "BCC",
  "DISCARD",
  "DUNNO",
  "FILTER",
  "HOLD",
  "IGNORE",
  "INFO",
  "PASS",
  "PREPEND",
  "REDIRECT",
  "REPLACE",
  "REJECT",
  "STRIP",
  "WARN",
]);

/** Why a result is not a usable action; the text is Postfix's warning. */
export class ActionError extends Error {}

/** Whether `text` starts with a valid header label (`Name:`). */
export function isHeaderLine(text: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(text);
}

/**
 * Parses a header_checks/body_checks result. `OK` is DUNNO (header_checks(5)).
 * Throws ActionError, with the warning Postfix logs, for an unknown action
 * or one that lacks its argument.
 */
export function parseAction(result: string, mapClass: string, header: boolean): CheckAction {
  const m = /^([A-Za-z]+)(?:[ \t]+|$)([\s\S]*)$/.exec(result.trimStart());
  if (!m) throw new ActionError(`unknown command in ${mapClass} map: ${result}`);
  let name = m[1].toUpperCase();
  const text = m[2].trim();
  if (name === "OK") name = "DUNNO";
  if (!known.has(name)) throw new ActionError(`unknown command in ${mapClass} map: ${result}`);
  const needs: Record<string, string> = {
    PREPEND: "PREPEND action without text",
    REPLACE: "REPLACE action without text",
    REDIRECT: "missing REDIRECT destination",
    FILTER: "missing FILTER command argument",
    BCC: "missing BCC destination",
  };
  if (needs[name] && text === "") throw new ActionError(`${needs[name]} in ${mapClass} map`);
  if ((name === "PREPEND" || name === "REPLACE") && header && !isHeaderLine(text)) {
    throw new ActionError(
      `bad ${name} header text "${text}" in ${mapClass} map -- need "headername: headervalue"`,
    );
  }
  if (name === "FILTER" && !text.includes(":")) {
    throw new ActionError(`bad FILTER action in ${mapClass} map: ${text}`);
  }
  if ((name === "REDIRECT" || name === "BCC") && !text.includes("@")) {
    throw new ActionError(`bad ${name} destination in ${mapClass} map: ${text}`);
  }
  return { name: name as ActionName, text };
}

/**
 * The reply text of a REJECT: the given text with "5.7.1" in front when it
 * has no enhanced status code, else Postfix's generic text.
 */
export function rejectReason(text: string): string {
  if (text === "") return "5.7.1 message content rejected";
  if (/^[245]\.\d{1,3}\.\d{1,3}(\s|$)/.test(text)) return text;
  return `5.7.1 ${text}`;
}
