// Header and body checks in cleanup(8): a line looked up in a check table,
// the result parsed (actions.ts) and applied to the message state with the
// log line Postfix writes for each action.

import { ActionError, type CheckAction, parseAction, rejectReason } from "./actions.ts";
import type { CleanupState } from "./core.ts";
import { CleanupStat } from "./status.ts";

/** What happens to the inspected line. */
export type Verdict = "keep" | "drop" | { prepend: string } | { replace: string };

/** Applies a parsed header/body check action; returns what happens to the line. */
export function applyAction(
  st: CleanupState,
  action: CheckAction,
  cls: "header" | "body",
  content: string,
): Verdict {
  const t = action.text;
  switch (action.name) {
    case "REJECT": {
      const reason = rejectReason(t);
      st.logAction("reject", cls, content, reason);
      st.fail(CleanupStat.CONT, reason);
      st.checking = false;
      return "keep";
    }
    case "DISCARD":
      st.logAction("discard", cls, content, t);
      st.discard = true;
      st.checking = false;
      return "keep";
    case "HOLD":
      st.logAction("hold", cls, content, t);
      st.hold = true;
      return "keep";
    case "REDIRECT":
      st.logAction("redirect", cls, content, t);
      st.redirect = t;
      return "keep";
    case "FILTER":
      // Once a REDIRECT is in force a FILTER action is not taken (the reference's behaviour).
      if (st.redirect) return "keep";
      st.logAction("filter", cls, content, t);
      st.filter = t;
      return "keep";
    case "WARN":
      st.logAction("warning", cls, content, t);
      return "keep";
    case "INFO":
      st.logAction("info", cls, content, t);
      return "keep";
    case "PASS":
      st.logAction("pass", cls, content, t);
      st.checking = false;
      return "keep";
    case "STRIP":
      st.logAction("strip", cls, content, t);
      return "drop";
    case "IGNORE":
      return "drop";
    case "PREPEND":
      st.logAction("prepend", cls, content, t);
      return { prepend: t };
    case "REPLACE":
      st.logAction("replace", cls, content, t);
      return { replace: t };
    case "BCC":
      st.logAction("bcc", cls, content, t);
      st.addBcc(t);
      return "keep";
    case "DUNNO":
      return "keep";
  }
}

/** Looks `line` up in a check table and applies the action found. */
export async function runCheck(
  st: CleanupState,
  table: ((line: string) => Promise<string | undefined>) | undefined,
  mapClass: string,
  cls: "header" | "body",
  line: string,
): Promise<Verdict> {
  if (!table || !st.checking || line === "") return "keep";
  const result = await table(line);
  if (result === undefined) return "keep";
  let action: CheckAction;
  try {
    action = parseAction(result, mapClass, cls === "header");
  } catch (err) {
    if (!(err instanceof ActionError)) throw err;
    st.req.log.warn(err.message);
    return "keep";
  }
  return applyAction(st, action, cls, line);
}
