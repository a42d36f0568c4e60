// smtp_reply_filter and smtp_delivery_status_filter: last-resort rewriting
// of what servers say and of what is reported per recipient. The reply
// filter replaces each reply line found in its table; the status filter
// looks up "X.Y.Z text" and may change the code (within its class: success
// stays success, failure stays failure) or the text.

import type { Config } from "../../lib/config/mod.ts";
import { type Dict, openMap } from "../../maps/mod.ts";
import { warn } from "../../lib/log.ts";

/** Replaces one reply line, or returns it unchanged. */
export type ReplyFilter = (line: string) => Promise<string>;

/** A delivery status after the filter: the code and text to report. */
export type StatusFilter = (dsn: string, text: string) => Promise<{ dsn: string; text: string }>;

function tables(config: Config, param: string): Dict[] {
  return config.list(param).map((spec) => openMap(spec, { cwd: config.configDir }));
}

async function firstMatch(dicts: Dict[], key: string, param: string): Promise<string | undefined> {
  for (const d of dicts) {
    try {
      const v = await d.lookup(key);
      if (v !== undefined) return v;
    } catch (err) {
      warn(`${param}: lookup error for "${key}": ${(err as Error).message}`);
      return undefined;
    }
  }
  return undefined;
}

/** The reply filter of `prefix` (smtp/lmtp), or undefined when none is set. */
export function replyFilter(config: Config, prefix: string): ReplyFilter | undefined {
  const param = `${prefix}_reply_filter`;
  const dicts = tables(config, param);
  if (!dicts.length) return undefined;
  return async (line) => (await firstMatch(dicts, line, param)) ?? line;
}

/** The delivery status filter of `prefix`, or undefined when none is set. */
export function statusFilter(config: Config, prefix: string): StatusFilter | undefined {
  const param = `${prefix}_delivery_status_filter`;
  const dicts = tables(config, param);
  if (!dicts.length) return undefined;
  return async (dsn, text) => {
    const result = await firstMatch(dicts, `${dsn} ${text}`, param);
    if (result === undefined) return { dsn, text };
    const m = /^([245])\.(\d{1,3})\.(\d{1,3})\s+(\S.*)$/s.exec(result.trim());
    const success = (code: string) => code.startsWith("2");
    if (!m || success(m[1]) !== success(dsn)) {
      warn(`${param}: ignoring bad result "${result}" for "${dsn} ${text}"`);
      return { dsn, text };
    }
    return { dsn: `${m[1]}.${m[2]}.${m[3]}`, text: m[4] };
  };
}
