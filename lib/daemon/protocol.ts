// How the master and its children talk, as Postfix's master does it: fixed
// descriptor slots in the child, a status pipe the child writes "taken" and
// "available" on, and the listening sockets from slot 6 up.
//
// Two reports are Posthorn's own: a runtime process takes ~0.1 s to start,
// so a service whose processes run out at max_use keeps a spare. The spare
// is started with STANDBY_ENV set, loads, reports "standby" and waits for
// SIGUSR1 before it touches the sockets; a process taking its last client
// (max_use) reports "retiring", and the master wakes the spare and starts the
// next one, so clients never wait for a process to start.
//
// Slot 3 is unused (Postfix's flow pipe); slot 4 is a lifeline: the read end
// of a pipe whose write end only the master holds, so a child sees end of
// file when the master is gone and exits, even after `kill -9` of the master.

/** The read end of the master's lifeline pipe, in every child. */
export const MASTER_LIFELINE_FD = 4;
/** The write end of the service's status pipe, in every child. */
export const MASTER_STATUS_FD = 5;
/** The first listening descriptor; a service with N sockets has 6 .. 6+N-1. */
export const MASTER_LISTEN_FD = 6;

/**
 * A child's report: it can take a client, or it cannot (busy or exiting);
 * it took its last client (retiring); it is a spare, loaded and waiting.
 */
export type ChildStatus = "available" | "taken" | "retiring" | "standby";

const codes: Record<ChildStatus, string> = {
  available: "A",
  taken: "T",
  retiring: "R",
  standby: "S",
};
const statusByCode: Record<string, ChildStatus> = {
  A: "available",
  T: "taken",
  R: "retiring",
  S: "standby",
};

/** The environment variable that starts a child as a spare (see the module comment). */
export const STANDBY_ENV = "POSTHORN_STANDBY";

/** One status message: `PID GENERATION A|T\n` (under PIPE_BUF: written atomically). */
export function formatStatus(pid: number, generation: number, status: ChildStatus): string {
  return `${pid} ${generation} ${codes[status]}\n`;
}

/** A parsed status message. */
export interface StatusMessage {
  pid: number;
  generation: number;
  status: ChildStatus;
}

/** Parses the status lines in `text`; malformed lines are skipped. */
export function parseStatus(text: string): StatusMessage[] {
  const out: StatusMessage[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+) (\d+) ([ATRS])$/.exec(line);
    if (m) out.push({ pid: Number(m[1]), generation: Number(m[2]), status: statusByCode[m[3]] });
  }
  return out;
}

/** The environment variable carrying the child's generation (stale reports are ignored). */
export const GENERATION_ENV = "POSTHORN_GENERATION";
