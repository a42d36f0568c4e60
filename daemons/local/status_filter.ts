// local_delivery_status_filter: a last-resort rewrite of each delivery's
// "X.Y.Z text" through lookup tables (Postfix 3.0 and later). A result must
// be a status code and text; success stays success and failure stays
// failure, though a soft failure may become a hard one or back.

import type { Dict } from "../../maps/dict.ts";
import { warn } from "../../lib/log.ts";

/** Rewrites one status, or returns it unchanged. */
export type StatusFilter = (dsn: string, text: string) => Promise<{ dsn: string; text: string }>;

/** The filter over `tables`, for parameter `param`; undefined when there are none. */
export function statusFilter(tables: Dict[], param: string): StatusFilter | undefined {
  if (!tables.length) return undefined;
  return async (dsn, text) => {
    let result: string | undefined;
    for (const table of tables) {
      try {
        result = await table.lookup(`${dsn} ${text}`);
      } catch (err) {
        warn(`${param}: lookup error for "${dsn} ${text}": ${(err as Error).message}`);
        return { dsn, text };
      }
      if (result !== undefined) break;
    }
    if (result === undefined) return { dsn, text };
    const m = /^([245])\.(\d{1,3})\.(\d{1,3})\s+(\S.*)$/s.exec(result.trim());
    if (!m || (m[1] === "2") !== dsn.startsWith("2")) {
      warn(`${param}: ignoring bad result "${result}" for "${dsn} ${text}"`);
      return { dsn, text };
    }
    return { dsn: `${m[1]}.${m[2]}.${m[3]}`, text: m[4] };
  };
}
