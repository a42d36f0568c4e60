// local(8)'s parameters, read once per process from main.cf (with the
// service's -o overrides). forward_path, luser_relay, mailbox_command and
// command_execution_directory are kept unexpanded: local(8) expands them
// per recipient with its own attributes (expand.ts), as Postfix reads them
// as "raw" parameters.

import type { Config } from "../../lib/config/mod.ts";

/** The expansion contexts of allow_mail_to_commands, allow_mail_to_files and prepend_delivered_header. */
export type Context = "alias" | "forward" | "include" | "command" | "file";

/** What local(8) reads from main.cf. */
export interface LocalSettings {
  /** The master.cf service name: expanded addresses resolving to it are delivered here. */
  serviceName: string;
  myhostname: string;
  /** mail_name, in the Received: header of forwarded copies. */
  mailName: string;
  aliasMaps: string[];
  forwardPath: string;
  forwardExpansionFilter: string;
  commandExpansionFilter: string;
  executionDirectoryExpansionFilter: string;
  commandExecutionDirectory: string;
  allowMailToCommands: Set<string>;
  allowMailToFiles: Set<string>;
  prependDeliveredHeader: Set<string>;
  mailboxTransportMaps: string[];
  mailboxTransport: string;
  mailboxCommandMaps: string[];
  mailboxCommand: string;
  homeMailbox: string;
  mailSpoolDirectory: string;
  fallbackTransportMaps: string[];
  fallbackTransport: string;
  luserRelay: string;
  recipientDelimiter: string;
  biff: boolean;
  ownerRequestSpecial: boolean;
  expandOwnerAlias: boolean;
  resetOwnerAlias: boolean;
  frozenDeliveredTo: boolean;
  enableOriginalRecipient: boolean;
  requireHomeDirectory: boolean;
  strictMailboxOwnership: boolean;
  defaultPrivs: string;
  commandTimeLimit: number;
  mailboxSizeLimit: number;
  duplicateFilterLimit: number;
  exportEnvironment: string[];
  localCommandShell: string;
  mailboxDeliveryLock: string[];
  deliverLockAttempts: number;
  deliverLockDelay: number;
  staleLockTime: number;
  queueDirectory: string;
  cleanupService: string;
}

function contexts(config: Config, name: string): Set<string> {
  return new Set(config.list(name).map((s) => s.toLowerCase()));
}

/** The settings from a loaded configuration. */
export function localSettings(config: Config, serviceName = "local"): LocalSettings {
  const raw = (name: string) => config.raw(name) ?? "";
  const queue = config.get("queue_directory");
  return {
    serviceName,
    myhostname: config.get("myhostname"),
    mailName: config.get("mail_name"),
    aliasMaps: config.list("alias_maps"),
    forwardPath: raw("forward_path"),
    forwardExpansionFilter: config.get("forward_expansion_filter"),
    commandExpansionFilter: config.get("command_expansion_filter"),
    executionDirectoryExpansionFilter: config.get("execution_directory_expansion_filter"),
    commandExecutionDirectory: raw("command_execution_directory"),
    allowMailToCommands: contexts(config, "allow_mail_to_commands"),
    allowMailToFiles: contexts(config, "allow_mail_to_files"),
    prependDeliveredHeader: contexts(config, "prepend_delivered_header"),
    mailboxTransportMaps: config.list("mailbox_transport_maps"),
    mailboxTransport: config.get("mailbox_transport"),
    mailboxCommandMaps: config.list("mailbox_command_maps"),
    // postconf(5): not subject to $parameter expansion, so shell syntax such
    // as "$EXTENSION" reaches the shell intact.
    mailboxCommand: raw("mailbox_command"),
    homeMailbox: config.get("home_mailbox"),
    mailSpoolDirectory: config.get("mail_spool_directory"),
    fallbackTransportMaps: config.list("fallback_transport_maps"),
    fallbackTransport: config.get("fallback_transport"),
    luserRelay: raw("luser_relay"),
    recipientDelimiter: config.get("recipient_delimiter"),
    biff: config.bool("biff"),
    ownerRequestSpecial: config.bool("owner_request_special"),
    expandOwnerAlias: config.bool("expand_owner_alias"),
    resetOwnerAlias: config.bool("reset_owner_alias"),
    frozenDeliveredTo: config.bool("frozen_delivered_to"),
    enableOriginalRecipient: config.bool("enable_original_recipient"),
    requireHomeDirectory: config.bool("require_home_directory"),
    strictMailboxOwnership: config.bool("strict_mailbox_ownership"),
    defaultPrivs: config.get("default_privs"),
    commandTimeLimit: config.time("command_time_limit"),
    mailboxSizeLimit: config.size("mailbox_size_limit"),
    duplicateFilterLimit: config.int("duplicate_filter_limit"),
    exportEnvironment: config.list("export_environment"),
    localCommandShell: config.get("local_command_shell"),
    mailboxDeliveryLock: config.list("mailbox_delivery_lock"),
    deliverLockAttempts: config.int("deliver_lock_attempts"),
    deliverLockDelay: config.time("deliver_lock_delay"),
    staleLockTime: config.time("stale_lock_time"),
    queueDirectory: queue,
    cleanupService: `${queue}/public/${config.get("cleanup_service_name") || "cleanup"}`,
  };
}
