// smtpd's parameters, read once per process from main.cf and the service's
// -o overrides, and the helpers that depend only on them.

import type { Config } from "../../lib/config/mod.ts";

/** What smtpd reads from main.cf (names as Postfix spells them, camelCased). */
export interface SmtpdSettings {
  config: Config;
  myhostname: string;
  mailName: string;
  smtpdBanner: string;
  messageSizeLimit: number;
  lineLengthLimit: number;
  smtpdRecipientLimit: number;
  smtpdTimeout: number;
  smtpdSoftErrorLimit: number;
  smtpdHardErrorLimit: number;
  smtpdErrorSleepTime: number;
  smtpdJunkCommandLimit: number;
  disableVrfyCommand: boolean;
  smtpdHeloRequired: boolean;
  smtpdDelayReject: boolean;
  /** smtpd_delay_open_until_valid_rcpt: the cleanup stream opens at the first accepted RCPT, else at MAIL. */
  smtpdDelayOpen: boolean;
  smtpdDiscardEhloKeywords: string[];
  smtpdForbidUnauthPipelining: boolean;
  smtpdForbiddenCommands: string[];
  smtpdAuthorizedXclientHosts: string[];
  smtpdAuthorizedXforwardHosts: string[];
  mynetworks: string[];
  softBounce: boolean;
  /** public/cleanup, as Postfix's smtpd connects (private/cleanup when only that exists). */
  cleanupSocket: string;
  anvilSocket: string;
  receiveFlags: string[];
  smtpdClientConnectionCountLimit: number;
  smtpdClientConnectionRateLimit: number;
  smtpdClientMessageRateLimit: number;
  smtpdClientRecipientRateLimit: number;
  smtpdClientEventLimitExceptions: string[];
  localHeaderRewriteClients: string[];
  smtputf8Enable: boolean;
  /** The TLS certificate and key (STARTTLS offered when both are set and the level allows). */
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsSecurityLevel: string;
  tlsWrapperMode: boolean;
  tlsAuthOnly: boolean;
  smtpdTlsReceivedHeader: boolean;
  /** SASL through Dovecot's auth socket (smtpd_sasl_auth_enable, _type, _path). */
  saslEnable: boolean;
  saslPath: string;
  saslSecurityOptions: string[];
}

/** Reads the settings from a configuration. */
export function settingsFrom(config: Config): SmtpdSettings {
  const queue = config.get("queue_directory");
  const level = config.get("smtpd_tls_security_level") ||
    (config.bool("smtpd_enforce_tls") ? "encrypt" : config.bool("smtpd_use_tls") ? "may" : "");
  return {
    config,
    myhostname: config.get("myhostname"),
    mailName: config.get("mail_name"),
    smtpdBanner: config.get("smtpd_banner"),
    messageSizeLimit: config.int("message_size_limit"),
    lineLengthLimit: Math.max(config.int("line_length_limit"), 512),
    smtpdRecipientLimit: config.int("smtpd_recipient_limit"),
    smtpdTimeout: config.time("smtpd_timeout"),
    smtpdSoftErrorLimit: config.int("smtpd_soft_error_limit"),
    smtpdHardErrorLimit: config.int("smtpd_hard_error_limit"),
    smtpdErrorSleepTime: config.time("smtpd_error_sleep_time"),
    smtpdJunkCommandLimit: config.int("smtpd_junk_command_limit"),
    disableVrfyCommand: config.bool("disable_vrfy_command"),
    smtpdHeloRequired: config.bool("smtpd_helo_required"),
    smtpdDelayReject: config.bool("smtpd_delay_reject"),
    smtpdDelayOpen: config.bool("smtpd_delay_open_until_valid_rcpt"),
    smtpdDiscardEhloKeywords: config.list("smtpd_discard_ehlo_keywords").map((k) =>
      k.toLowerCase()
    ),
    smtpdForbidUnauthPipelining: config.bool("smtpd_forbid_unauth_pipelining"),
    smtpdForbiddenCommands: config.list("smtpd_forbidden_commands").filter((c) => !c.includes(":"))
      .map((c) => c.toUpperCase()),
    smtpdAuthorizedXclientHosts: config.list("smtpd_authorized_xclient_hosts"),
    smtpdAuthorizedXforwardHosts: config.list("smtpd_authorized_xforward_hosts"),
    mynetworks: config.list("mynetworks"),
    softBounce: config.bool("soft_bounce"),
    cleanupSocket: `${queue}/public/${config.get("cleanup_service_name") || "cleanup"}`,
    anvilSocket: `${queue}/private/anvil`,
    receiveFlags: config.list("receive_override_options"),
    smtpdClientConnectionCountLimit: config.int("smtpd_client_connection_count_limit"),
    smtpdClientConnectionRateLimit: config.int("smtpd_client_connection_rate_limit"),
    smtpdClientMessageRateLimit: config.int("smtpd_client_message_rate_limit"),
    smtpdClientRecipientRateLimit: config.int("smtpd_client_recipient_rate_limit"),
    smtpdClientEventLimitExceptions: config.list("smtpd_client_event_limit_exceptions"),
    localHeaderRewriteClients: config.list("local_header_rewrite_clients"),
    smtputf8Enable: config.bool("smtputf8_enable"),
    tlsCertFile: config.get("smtpd_tls_cert_file"),
    tlsKeyFile: config.get("smtpd_tls_key_file"),
    tlsSecurityLevel: level,
    tlsWrapperMode: config.bool("smtpd_tls_wrappermode"),
    tlsAuthOnly: config.bool("smtpd_tls_auth_only"),
    smtpdTlsReceivedHeader: config.bool("smtpd_tls_received_header"),
    saslEnable: config.bool("smtpd_sasl_auth_enable") &&
      config.get("smtpd_sasl_type") === "dovecot",
    saslPath: saslSocket(queue, config.get("smtpd_sasl_path")),
    saslSecurityOptions: config.list("smtpd_sasl_security_options").map((o) => o.toLowerCase()),
  };
}

/** smtpd_sasl_path: absolute, or relative to the queue directory (private/auth). */
function saslSocket(queue: string, path: string): string {
  const p = path.replace(/^unix:/, "");
  return p.startsWith("/") ? p : `${queue}/${p}`;
}
