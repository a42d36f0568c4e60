// The main.cf parameters cleanup(8) reads, gathered once per process into
// one typed object (Postfix names in camelCase), and the per-message flags a
// client sends (Postfix's CLEANUP_FLAG_*).

import type { Config } from "../../lib/config/mod.ts";
import { type RewriteRules, rewriteRulesFrom } from "../../lib/address/mod.ts";

/** Where an address mapping applies (canonical_classes, masquerade_classes). */
export interface AddressClasses {
  envelopeSender: boolean;
  envelopeRecipient: boolean;
  headerSender: boolean;
  headerRecipient: boolean;
}

/** Every setting the message processor uses. */
export interface CleanupSettings {
  myhostname: string;
  mailName: string;
  rewrite: RewriteRules;
  remoteHeaderRewriteDomain: string;
  canonicalClasses: AddressClasses;
  senderCanonicalClasses: AddressClasses;
  recipientCanonicalClasses: AddressClasses;
  masqueradeClasses: AddressClasses;
  masqueradeDomains: string[];
  masqueradeExceptions: string[];
  alwaysBcc: string;
  headerSizeLimit: number;
  messageSizeLimit: number;
  hopcountLimit: number;
  headerAddressTokenLimit: number;
  virtualAliasRecursionLimit: number;
  virtualAliasExpansionLimit: number;
  duplicateFilterLimit: number;
  undisclosedRecipientsHeader: string;
  alwaysAddMissingHeaders: boolean;
  enableOriginalRecipient: boolean;
  bodyChecksSizeLimit: number;
  lineLengthLimit: number;
  mimeNestingLimit: number;
  mimeBoundaryLengthLimit: number;
  strict7bitHeaders: boolean;
  strict8bitmimeBody: boolean;
  strictMimeEncodingDomain: boolean;
  disableMimeInputProcessing: boolean;
  cleanupReplaceStrayCrLf: boolean;
  contentFilter: string;
  /** delay_warning_time in seconds; 0: no W record. */
  delayWarningTime: number;
  headerFromFormat: string;
  messageStripCharacters: string;
  messageRejectCharacters: string;
  /** verp_delimiter_filter: the characters a VERP request may use. */
  verpDelimiterFilter: string;
}

/** Per-message request flags (CLEANUP_FLAG_*), with Postfix's bit values. */
export const CleanupFlag = {
  BOUNCE: 1 << 0,
  FILTER: 1 << 1,
  HOLD: 1 << 2,
  DISCARD: 1 << 3,
  BCC_OK: 1 << 4,
  MAP_OK: 1 << 5,
  MILTER: 1 << 6,
  SMTP_REPLY: 1 << 7,
  /** Detect SMTPUTF8 from the content (smtputf8_autodetect_classes names this client). */
  AUTOUTF8: 1 << 9,
} as const;

/** What an ordinary client (pickup, smtpd) asks for: checks, BCC and mappings. */
export const defaultFlags: number = CleanupFlag.FILTER | CleanupFlag.BCC_OK | CleanupFlag.MAP_OK;

function classes(items: string[]): AddressClasses {
  const set = new Set(items.map((s) => s.toLowerCase()));
  return {
    envelopeSender: set.has("envelope_sender"),
    envelopeRecipient: set.has("envelope_recipient"),
    headerSender: set.has("header_sender"),
    headerRecipient: set.has("header_recipient"),
  };
}

/** Reads the settings from a configuration. */
export function settingsFrom(config: Config): CleanupSettings {
  return {
    myhostname: config.get("myhostname"),
    mailName: config.get("mail_name") || "Postfix",
    rewrite: rewriteRulesFrom(config),
    remoteHeaderRewriteDomain: config.get("remote_header_rewrite_domain"),
    canonicalClasses: classes(config.list("canonical_classes")),
    senderCanonicalClasses: classes(config.list("sender_canonical_classes")),
    recipientCanonicalClasses: classes(config.list("recipient_canonical_classes")),
    masqueradeClasses: classes(config.list("masquerade_classes")),
    masqueradeDomains: config.list("masquerade_domains"),
    masqueradeExceptions: config.list("masquerade_exceptions"),
    alwaysBcc: config.get("always_bcc"),
    headerSizeLimit: config.int("header_size_limit"),
    messageSizeLimit: config.int("message_size_limit"),
    hopcountLimit: config.int("hopcount_limit"),
    headerAddressTokenLimit: config.int("header_address_token_limit"),
    virtualAliasRecursionLimit: config.int("virtual_alias_recursion_limit"),
    virtualAliasExpansionLimit: config.int("virtual_alias_expansion_limit"),
    duplicateFilterLimit: config.int("duplicate_filter_limit"),
    undisclosedRecipientsHeader: config.get("undisclosed_recipients_header"),
    alwaysAddMissingHeaders: config.bool("always_add_missing_headers"),
    enableOriginalRecipient: config.bool("enable_original_recipient"),
    bodyChecksSizeLimit: config.int("body_checks_size_limit"),
    lineLengthLimit: config.int("line_length_limit"),
    mimeNestingLimit: config.int("mime_nesting_limit"),
    mimeBoundaryLengthLimit: config.int("mime_boundary_length_limit"),
    strict7bitHeaders: config.bool("strict_7bit_headers"),
    strict8bitmimeBody: config.bool("strict_8bitmime_body"),
    strictMimeEncodingDomain: config.bool("strict_mime_encoding_domain"),
    disableMimeInputProcessing: config.bool("disable_mime_input_processing"),
    cleanupReplaceStrayCrLf: config.isSet("cleanup_replace_stray_cr_lf")
      ? config.bool("cleanup_replace_stray_cr_lf")
      : true,
    contentFilter: config.get("content_filter"),
    delayWarningTime: config.time("delay_warning_time"),
    headerFromFormat: config.get("header_from_format") || "standard",
    messageStripCharacters: config.get("message_strip_characters"),
    messageRejectCharacters: config.get("message_reject_characters"),
    verpDelimiterFilter: config.get("verp_delimiter_filter"),
  };
}
