// Per-destination concurrency with slow start and feedback, as
// SCHEDULER_README's "Postfix 2.5 concurrency feedback algorithm": positive
// feedback g(N) after each success, negative feedback f(N) after each
// failure, hysteresis 1, and "dead destination" detection after more than
// the failed-cohort limit of pseudo-cohorts failed.

/** A feedback function: x, x/N or x/sqrt(N) of the concurrency N. */
export type Feedback = (concurrency: number) => number;

/** Parses a *_destination_concurrency_{positive,negative}_feedback value. */
export function parseFeedback(value: string): Feedback | null {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:\/\s*(concurrency|sqrt_concurrency|win|sqrt_win))?\s*$/
    .exec(value);
  if (!m) return null;
  const x = Number(m[1]);
  if (!(x >= 0 && x <= 1)) return null;
  if (!m[2]) return () => x;
  if (m[2].startsWith("sqrt")) return (n) => x / Math.sqrt(Math.max(n, 1));
  return (n) => x / Math.max(n, 1);
}

/** The tuning of one transport's destinations. */
export interface WindowSettings {
  initial: number;
  /** 0: no limit. */
  limit: number;
  positive: Feedback;
  negative: Feedback;
  cohortLimit: number;
}

/** One destination's concurrency window. */
export class ConcurrencyWindow {
  concurrency: number;
  private success = 0;
  private failure = 0;
  failCohorts = 0;

  constructor(private readonly s: WindowSettings) {
    this.concurrency = s.initial;
  }

  /** After a successful delivery; `busy` is the number of deliveries in progress. */
  positive(busy: number): void {
    this.failCohorts = 0;
    // Growing while few deliveries are in flight would delay the effect of
    // negative feedback (SCHEDULER_README "Safety").
    if (this.concurrency >= busy + this.s.initial) return;
    this.success += this.s.positive(this.concurrency);
    while (this.success >= 1) {
      this.concurrency += 1;
      this.failure = 0;
      this.success -= 1;
    }
    if (this.s.limit > 0 && this.concurrency > this.s.limit) this.concurrency = this.s.limit;
  }

  /** After a failed delivery; returns true when the destination is now dead. */
  negative(): boolean {
    if (this.concurrency > 0) {
      this.failCohorts += 1 / this.concurrency;
      if (this.failCohorts > this.s.cohortLimit) this.concurrency = 0;
    }
    if (this.concurrency > 0) {
      this.failure -= this.s.negative(this.concurrency);
      while (this.failure < 0) {
        this.concurrency -= 1;
        this.failure += 1;
        this.success = 0;
      }
      if (this.concurrency < 1) this.concurrency = 1;
    }
    return this.concurrency === 0;
  }

  /** Back to slow start (a dead destination revived). */
  reset(): void {
    this.concurrency = this.s.initial;
    this.success = this.failure = this.failCohorts = 0;
  }
}
