// cleanup's completion status: Postfix's CLEANUP_STAT_* bits and the reply
// each maps to, so that pickup, smtpd and qmqpd can turn one into an SMTP
// reply or a bounce reason.

/** Status bits, with Postfix's values (the cleanup protocol carries the number). */
export const CleanupStat = {
  OK: 0,
  BAD: 1 << 0,
  WRITE: 1 << 1,
  SIZE: 1 << 2,
  CONT: 1 << 3,
  HOPS: 1 << 4,
  RCPT: 1 << 6,
  PROXY: 1 << 7,
  DEFER: 1 << 8,
  NOPERM: 1 << 9,
} as const;

/** The SMTP reply, enhanced code and text for each status bit. */
const details: { stat: number; smtp: number; dsn: string; text: string }[] = [
  { stat: CleanupStat.DEFER, smtp: 451, dsn: "4.7.1", text: "service unavailable" },
  { stat: CleanupStat.PROXY, smtp: 451, dsn: "4.3.0", text: "queue file write error" },
  { stat: CleanupStat.BAD, smtp: 451, dsn: "4.3.0", text: "internal protocol error" },
  { stat: CleanupStat.RCPT, smtp: 550, dsn: "5.1.0", text: "no recipients specified" },
  { stat: CleanupStat.HOPS, smtp: 554, dsn: "5.4.0", text: "too many hops" },
  { stat: CleanupStat.SIZE, smtp: 552, dsn: "5.3.4", text: "message file too big" },
  { stat: CleanupStat.CONT, smtp: 550, dsn: "5.7.1", text: "message content rejected" },
  { stat: CleanupStat.WRITE, smtp: 451, dsn: "4.3.0", text: "queue file write error" },
  { stat: CleanupStat.NOPERM, smtp: 550, dsn: "5.7.1", text: "service denied" },
];

/** The reply details of the most important bit in `status` (cleanup_stat_detail). */
export function statusDetail(status: number): { smtp: number; dsn: string; text: string } {
  for (const d of details) if (status & d.stat) return d;
  return { smtp: 250, dsn: "2.0.0", text: "success" };
}

/** Whether a status is a temporary failure (the client should try again). */
export function isTemporary(status: number): boolean {
  return statusDetail(status).smtp < 500 && status !== 0;
}
