// The queue tree under queue_directory: which directories exist, their modes,
// and where a queue file lives (hashed subdirectories per hash_queue_names
// and hash_queue_depth).

import { queueIdHashKey } from "./id.ts";

/** Queues that hold queue files (postsuper, postcat -q, qmgr scan these). */
export const messageQueues = ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"];

/** Logs kept per message (bounce, defer, trace) and the other service folders. */
export const logQueues = ["bounce", "defer", "trace", "flush"];

/** The order postcat -q searches queues for an id. */
export const searchOrder = ["incoming", "active", "deferred", "hold", "maildrop", "corrupt"];

/** How one directory of the tree is created. */
export interface QueueDirSpec {
  name: string;
  /** Permission bits, including set-group-id and sticky where they apply. */
  mode: number;
  /** Owned by mail_owner (true) or left to the creating user (false: pid/). */
  mailOwner: boolean;
}

/**
 * The directories and modes. Postfix's are kept, except where one binary
 * without a setgid postdrop needs otherwise (docs/SECURITY.md, "Local
 * submission"): maildrop is 3733 (set-group-id and sticky, writable and
 * searchable by all, listable by its owner only), so a submitter's file
 * belongs to the submitter and to mail_owner's group; public is 0711, so any
 * user can reach a public service socket by name without listing the folder.
 */
export const queueTree: readonly QueueDirSpec[] = [
  { name: "active", mode: 0o700, mailOwner: true },
  { name: "bounce", mode: 0o700, mailOwner: true },
  { name: "corrupt", mode: 0o700, mailOwner: true },
  { name: "defer", mode: 0o700, mailOwner: true },
  { name: "deferred", mode: 0o700, mailOwner: true },
  { name: "flush", mode: 0o700, mailOwner: true },
  { name: "hold", mode: 0o700, mailOwner: true },
  { name: "incoming", mode: 0o700, mailOwner: true },
  { name: "maildrop", mode: 0o3733, mailOwner: true },
  { name: "pid", mode: 0o755, mailOwner: false },
  { name: "private", mode: 0o700, mailOwner: true },
  { name: "public", mode: 0o711, mailOwner: true },
  { name: "saved", mode: 0o700, mailOwner: true },
  { name: "trace", mode: 0o700, mailOwner: true },
];

/** The mode of a queue file while it is written, and once it is complete. */
export function queueFileModes(queueName: string): { writing: number; complete: number } {
  // A maildrop file must be readable by mail_owner's group (the folder's group):
  // pickup reads it without owning it.
  return queueName === "maildrop"
    ? { writing: 0o640, complete: 0o740 }
    : { writing: 0o600, complete: 0o700 };
}

/** The settings that decide where a file lives. */
export interface QueueLayout {
  /** queue_directory. */
  queueDirectory: string;
  /** hash_queue_names. */
  hashQueueNames: string[];
  /** hash_queue_depth. */
  hashQueueDepth: number;
}

/**
 * The hashed subdirectory path of `id` in `queueName` ("" when the queue is
 * not hashed). maildrop is never hashed: Postfix refuses it, and submitters
 * could not create subdirectories there anyway.
 */
export function hashedSubdir(layout: QueueLayout, queueName: string, id: string): string {
  if (queueName === "maildrop") return "";
  if (!layout.hashQueueNames.includes(queueName) || layout.hashQueueDepth <= 0) return "";
  const key = queueIdHashKey(id);
  const levels: string[] = [];
  for (let i = 0; i < layout.hashQueueDepth && i < key.length; i++) levels.push(key[i]);
  return levels.join("/");
}

/** The folder of a queue (`DIR/deferred`). */
export function queuePath(layout: QueueLayout, queueName: string): string {
  return `${layout.queueDirectory}/${queueName}`;
}

/** The full path of queue file `id` in `queueName`, hashed as configured. */
export function queueFilePath(layout: QueueLayout, queueName: string, id: string): string {
  const sub = hashedSubdir(layout, queueName, id);
  return sub
    ? `${queuePath(layout, queueName)}/${sub}/${id}`
    : `${queuePath(layout, queueName)}/${id}`;
}

/** The path relative to queue_directory (`hold/5397D20C026`), as postcat prints it. */
export function relativeQueueFilePath(layout: QueueLayout, queueName: string, id: string): string {
  return queueFilePath(layout, queueName, id).slice(layout.queueDirectory.length + 1);
}

/** The layout from a configuration object (anything with get/list/int). */
export function layoutFromConfig(
  config: { get(name: string): string; list(name: string): string[]; int(name: string): number },
): QueueLayout {
  return {
    queueDirectory: config.get("queue_directory"),
    hashQueueNames: config.list("hash_queue_names"),
    hashQueueDepth: config.int("hash_queue_depth"),
  };
}

/** Owner ids for the tree: mail_owner's when running as root, else the current user's. */
export interface TreeOwner {
  uid: number;
  gid: number;
}

/**
 * Creates whatever part of the queue tree is missing, with its mode (and, as
 * root, mail_owner's ownership). Existing directories are left as they are.
 */
export function createQueueTree(layout: QueueLayout, owner?: TreeOwner): void {
  Deno.mkdirSync(layout.queueDirectory, { recursive: true });
  for (const spec of queueTree) {
    const path = queuePath(layout, spec.name);
    try {
      Deno.mkdirSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) continue;
      throw err;
    }
    if (owner && spec.mailOwner) Deno.chownSync(path, owner.uid, owner.gid);
    // chmod after chown: chown clears set-group-id, and mkdir's mode obeys umask.
    Deno.chmodSync(path, spec.mode);
  }
}
