// cleanup's header and body check actions: the table-result parser lives in
// lib/header_checks.ts, shared with the smtp client's smtp_header_checks.

export {
  ActionError,
  type ActionName,
  type CheckAction,
  isHeaderLine,
  parseAction,
  rejectReason,
} from "../../lib/header_checks.ts";
