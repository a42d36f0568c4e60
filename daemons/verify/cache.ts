// The address verification cache of verify(8): one entry per address,
// `status:probed:updated:text` as Postfix keeps it (status a DEL_RCPT_STAT
// value; probed the time of the probe in flight, 0 when none; updated the
// time of the last result, 0 when none), with Postfix's rules for when an
// entry has expired, when a query sends a new probe, and when an update may
// replace what is known. Storage is a CacheStore: a lookup table
// (address_verify_map) or memory.

import { AddrStatus, VerifyStat } from "../../lib/verify_client.ts";

/** One cache entry. */
export interface CacheEntry {
  status: number;
  probed: number;
  updated: number;
  text: string;
}

/** The timing parameters, in seconds (address_verify_*). */
export interface CacheSettings {
  positiveExpire: number;
  positiveRefresh: number;
  negativeCache: boolean;
  negativeExpire: number;
  negativeRefresh: number;
}

/** Where entries live. */
export interface CacheStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  entries(): AsyncIterable<[string, string]>;
  /** Makes every change so far durable (a table commits in batches). */
  flush?(): Promise<void>;
}

/** A probe with no answer after this many seconds is taken as lost (Postfix's PROBE_TTL). */
export const PROBE_TTL = 1000;

/** The text of an address nobody has an answer for yet. */
export const IN_PROGRESS = "Address verification in progress";

const known = new Set<number>([
  AddrStatus.OK,
  AddrStatus.DEFER,
  AddrStatus.BOUNCE,
  AddrStatus.TODO,
]);

/** An entry's stored form. */
export function formatEntry(e: CacheEntry): string {
  return `${e.status}:${e.probed}:${e.updated}:${e.text}`;
}

/** Parses a stored entry; null when malformed (all-zero times included, as Postfix). */
export function parseEntry(raw: string): CacheEntry | null {
  const m = /^(\d+):(\d+):(\d+):(.*)$/s.exec(raw);
  if (!m) return null;
  const e = { status: Number(m[1]), probed: Number(m[2]), updated: Number(m[3]), text: m[4] };
  if (!known.has(e.status) || (e.probed === 0 && e.updated === 0)) return null;
  return e;
}

/** The answer to a query, and whether a probe must be sent. */
export interface QueryAnswer {
  status: number;
  why: string;
  probe: boolean;
}

/** The cache and its rules. */
export class VerifyCache {
  constructor(
    private readonly store: CacheStore,
    private readonly s: CacheSettings,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    private readonly warn: (text: string) => void = () => {},
  ) {}

  private expired(e: CacheEntry, now: number): boolean {
    return e.status === AddrStatus.OK
      ? e.updated + this.s.positiveExpire < now
      : e.updated + this.s.negativeExpire < now;
  }

  private refreshDue(e: CacheEntry, now: number): boolean {
    return e.status === AddrStatus.OK
      ? e.updated + this.s.positiveRefresh < now
      : e.updated + this.s.negativeRefresh < now;
  }

  /**
   * What is known of an address. Unknown, malformed or expired entries
   * answer "in progress"; a probe goes out when the entry is due for
   * refresh and no probe is in flight (the entry then records the probe
   * time; without negative caching only an entry with a result is kept).
   */
  async query(address: string): Promise<QueryAnswer> {
    const now = this.now();
    const raw = await this.store.get(address);
    let e = raw === undefined ? null : parseEntry(raw);
    if (raw !== undefined && !e) this.warn(`bad address verify table entry: ${raw.slice(0, 100)}`);
    if (!e || (now - e.probed > PROBE_TTL && this.expired(e, now))) {
      if (raw !== undefined && !this.s.negativeCache) await this.store.del(address);
      e = { status: AddrStatus.TODO, probed: 0, updated: 0, text: IN_PROGRESS };
    }
    const probe = now - e.probed > PROBE_TTL && this.refreshDue(e, now);
    if (probe && (e.updated !== 0 || this.s.negativeCache)) {
      await this.store.put(address, formatEntry({ ...e, probed: now }));
    }
    return { status: e.status, why: e.text, probe };
  }

  /**
   * Records a probe's result. A failed probe does not replace a
   * deliverable address before it expires (it is probed again instead).
   */
  async update(address: string, status: number, text: string): Promise<number> {
    if (status !== AddrStatus.OK && status !== AddrStatus.DEFER && status !== AddrStatus.BOUNCE) {
      return VerifyStat.BAD;
    }
    if (status !== AddrStatus.OK) {
      const raw = await this.store.get(address);
      const old = raw === undefined ? null : parseEntry(raw);
      if (old?.status === AddrStatus.OK) return VerifyStat.OK;
    }
    await this.store.put(
      address,
      formatEntry({ status, probed: 0, updated: this.now(), text: text.replace(/[\r\n]+/g, " ") }),
    );
    return VerifyStat.OK;
  }

  /** Drops expired entries without a probe in flight, and malformed ones; the counts. */
  async cleanup(): Promise<{ retained: number; dropped: number }> {
    const now = this.now();
    const drop: string[] = [];
    let retained = 0;
    for await (const [key, raw] of this.store.entries()) {
      const e = parseEntry(raw);
      if (!e || (now - e.probed > PROBE_TTL && this.expired(e, now))) drop.push(key);
      else retained++;
    }
    for (const key of drop) await this.store.del(key);
    return { retained, dropped: drop.length };
  }
}

/** An in-memory store (address_verify_map empty: nothing survives a restart). */
export function memoryStore(): CacheStore {
  const m = new Map<string, string>();
  return {
    get: (k) => Promise.resolve(m.get(k)),
    put: (k, v) => {
      m.set(k, v);
      return Promise.resolve();
    },
    del: (k) => {
      m.delete(k);
      return Promise.resolve();
    },
    async *entries() {
      yield* [...m.entries()];
    },
  };
}
