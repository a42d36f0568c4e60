// The virtual(8) delivery agent's configuration: the parameters it reads
// (virtual_mailbox_base, the three lookup tables, virtual_minimum_uid,
// virtual_mailbox_lock, virtual_mailbox_limit, the lock timing,
// strict_mailbox_ownership, recipient_delimiter), with its tables opened
// once per process.

import { type Dict, openMap } from "../../maps/mod.ts";
import { type LockStyle, parseLockStyles } from "../../lib/mailbox/mod.ts";
import { fatal } from "../../lib/log.ts";

/** What a virtual delivery needs from main.cf. */
export interface VirtualSettings {
  mailboxBase: string;
  /** virtual_mailbox_maps, virtual_uid_maps, virtual_gid_maps: parameter name and open tables. */
  mailboxMaps: NamedTables;
  uidMaps: NamedTables;
  gidMaps: NamedTables;
  minimumUid: number;
  lockStyles: LockStyle[];
  lockAttempts: number;
  lockDelay: number;
  staleLockTime: number;
  mailboxLimit: number;
  strictOwnership: boolean;
  recipientDelimiter: string;
  /** The host name in maildir file names (default: the system's). */
  hostname?: string;
}

/** A table list as a parameter names it. */
export interface NamedTables {
  /** The parameter name, which Postfix's warnings use as the title. */
  title: string;
  tables: Dict[];
}

/** What settingsFromConfig() reads. */
export interface VirtualConfig {
  get(name: string): string;
  list(name: string): string[];
  int(name: string): number;
  time(name: string): number;
  size(name: string): number;
  bool(name: string): boolean;
  isSet(name: string): boolean;
}

/**
 * Opens the tables `param` lists. A proxy: prefix is dropped: virtual(8)
 * opens its tables directly, as Postfix's does.
 */
export function openTables(config: VirtualConfig, param: string): NamedTables {
  const tables: Dict[] = [];
  for (const spec of config.list(param)) {
    const direct = spec.replace(/^proxy:/, "");
    try {
      tables.push(openMap(direct, { config }));
    } catch (err) {
      fatal(`open ${param} table ${direct}: ${(err as Error).message}`);
    }
  }
  return { title: param, tables };
}

/** The settings of a virtual process, from its configuration. */
export function settingsFromConfig(config: VirtualConfig): VirtualSettings {
  let lockStyles: LockStyle[];
  try {
    lockStyles = parseLockStyles(config.get("virtual_mailbox_lock"), "virtual_mailbox_lock");
  } catch (err) {
    fatal((err as Error).message);
  }
  // A mailbox limit below the message size limit would defer large messages
  // for ever; Postfix's virtual refuses to start with it.
  const mailboxLimit = config.size("virtual_mailbox_limit");
  const messageLimit = config.size("message_size_limit");
  if (mailboxLimit > 0 && messageLimit > 0 && mailboxLimit < messageLimit) {
    fatal("configuration error: virtual_mailbox_limit is smaller than message_size_limit");
  }
  return {
    mailboxBase: config.get("virtual_mailbox_base"),
    mailboxMaps: openTables(config, "virtual_mailbox_maps"),
    uidMaps: openTables(config, "virtual_uid_maps"),
    gidMaps: openTables(config, "virtual_gid_maps"),
    minimumUid: config.int("virtual_minimum_uid"),
    lockStyles,
    lockAttempts: config.int("deliver_lock_attempts"),
    lockDelay: config.time("deliver_lock_delay"),
    staleLockTime: config.time("stale_lock_time"),
    mailboxLimit,
    strictOwnership: config.bool("strict_mailbox_ownership"),
    recipientDelimiter: config.get("recipient_delimiter"),
  };
}
