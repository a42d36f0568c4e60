// Queue folder operations of the queue manager: listing a queue (hashed
// subdirectories included), moving a file between queues (creating a
// missing hash folder), and quiet checks and removals.

import { type QueueLayout, queuePath } from "../../lib/queue/layout.ts";
import { isQueueId } from "../../lib/queue/id.ts";

/** Whether a path exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes a file if it is there. */
export function removeQuiet(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Not there.
  }
}

/** Renames, creating a missing hashed subdirectory on the way. */
export function moveFile(from: string, to: string): void {
  try {
    Deno.renameSync(from, to);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) || !exists(from)) throw err;
    Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    Deno.renameSync(from, to);
  }
}

/** The queue files of a queue (hashed subdirectories included), oldest name first. */
export function listQueue(layout: QueueLayout, queue: string): { id: string; path: string }[] {
  const out: { id: string; path: string }[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory && depth < 4 && e.name.length === 1) walk(`${dir}/${e.name}`, depth + 1);
      else if (e.isFile && isQueueId(e.name)) out.push({ id: e.name, path: `${dir}/${e.name}` });
    }
  };
  walk(queuePath(layout, queue), 0);
  // Queue ids begin with the time: name order is roughly arrival order.
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
