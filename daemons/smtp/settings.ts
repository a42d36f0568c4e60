// The smtp(8)/lmtp(8) client's parameters, read once per process. The two
// programs read the same settings under two prefixes (smtp_*, lmtp_*); the
// few that differ in name (smtp_helo_name / lmtp_lhlo_name) are mapped here.

import type { Config } from "../../lib/config/mod.ts";

/** Timeouts in milliseconds (0: none). */
export interface SmtpTimeouts {
  connect: number;
  helo: number;
  starttls: number;
  mail: number;
  rcpt: number;
  dataInit: number;
  dataXfer: number;
  dataDone: number;
  quit: number;
  rset: number;
}

/** TLS client settings (smtp_tls_*). */
export interface TlsSettings {
  /** smtp_tls_security_level (none, may, encrypt, verify, secure, fingerprint, dane). */
  level: string;
  policyMaps: string[];
  caFile: string;
  caPath: string;
  certFile: string;
  keyFile: string;
  fingerprintDigest: string;
  fingerprintCertMatch: string[];
  verifyCertMatch: string[];
  secureCertMatch: string[];
  servername: string;
  wrapperMode: boolean;
  loglevel: number;
  noteStarttlsOffer: boolean;
  /** smtp_tls_protocols (opportunistic) and smtp_tls_mandatory_protocols. */
  protocols: string[];
  mandatoryProtocols: string[];
}

/** SASL client settings (smtp_sasl_*). */
export interface SaslSettings {
  enable: boolean;
  passwordMaps: string[];
  mechanismFilter: string[];
  securityOptions: string[];
  tlsSecurityOptions: string[];
  softBounce: boolean;
  senderDependent: boolean;
}

/** Every parameter the client reads. */
export interface SmtpSettings {
  lmtp: boolean;
  /** "smtp" or "lmtp": the parameter prefix and the protocol's name in log text. */
  prefix: "smtp" | "lmtp";
  heloName: string;
  timeouts: SmtpTimeouts;
  alwaysSendEhlo: boolean;
  neverSendEhlo: boolean;
  /** Default TCP port of the protocol (smtp_tcp_port / lmtp_tcp_port). */
  tcpPort: number;
  hostLookup: string[];
  /** smtp_dns_support_level is dnssec: answers carry the AD bit (DANE needs it). */
  dnssec: boolean;
  inetProtocols: string[];
  mxAddressLimit: number;
  mxSessionLimit: number;
  fallbackRelay: string[];
  /** smtp_bind_address / smtp_bind_address6: the local address of outgoing connections. */
  bindAddress: string;
  bindAddress6: string;
  /** smtp_address_preference: ipv4, ipv6 or any. */
  addressPreference: string;
  randomizeAddresses: boolean;
  deferIfNoMxAddressFound: boolean;
  skip5xxGreeting: boolean;
  skipQuitResponse: boolean;
  /** smtp_line_length_limit: longest message line sent (0: no limit). */
  lineLengthLimit: number;
  /** line_length_limit: longest reply line kept (the rest is read and dropped). */
  replyLineLimit: number;
  genericMaps: string[];
  discardEhloKeywords: string[];
  /** smtp_discard_ehlo_keyword_address_maps: keywords to discard, by server address. */
  discardEhloKeywordAddressMaps: string[];
  disableMimeOutputConversion: boolean;
  /** smtp_send_xforward_command. */
  sendXforward: boolean;
  xforwardTimeout: number;
  softBounce: boolean;
  /** myhostname, for the loop check. */
  myhostname: string;
  /** inet_interfaces and proxy_interfaces, for the "MX points back to myself" check. */
  inetInterfaces: string[];
  proxyInterfaces: string[];
  tls: TlsSettings;
  sasl: SaslSettings;
}

/** A port by number or service name (/etc/services, with smtp and lmtp known). */
export function portNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n > 0 && n < 65536 ? n : undefined;
  }
  const known: Record<string, number> = { smtp: 25, lmtp: 24, submission: 587, smtps: 465 };
  try {
    for (const line of Deno.readTextFileSync("/etc/services").split("\n")) {
      const m = /^(\S+)\s+(\d+)\/tcp\b(.*)$/.exec(line.replace(/#.*/, ""));
      if (m && (m[1] === text || m[3].trim().split(/\s+/).includes(text))) return Number(m[2]);
    }
  } catch {
    // No services file: the built-in names only.
  }
  return known[text];
}

/** Reads the settings of `program` ("smtp" or "lmtp") from `config`. */
export function smtpSettings(config: Config, program: string): SmtpSettings {
  const lmtp = program === "lmtp";
  const p = lmtp ? "lmtp" : "smtp";
  const ms = (name: string) => config.time(`${p}_${name}`) * 1000;
  const helo = lmtp ? "lhlo" : "helo";
  const tlsLevel = config.get(`${p}_tls_security_level`) ||
    (config.bool(`${p}_enforce_tls`) ? "encrypt" : config.bool(`${p}_use_tls`) ? "may" : "none");
  return {
    lmtp,
    prefix: p,
    heloName: config.get(`${p}_${helo}_name`),
    timeouts: {
      connect: ms("connect_timeout"),
      helo: ms(`${helo}_timeout`),
      starttls: ms("starttls_timeout") || 300_000,
      mail: ms("mail_timeout"),
      rcpt: ms("rcpt_timeout"),
      dataInit: ms("data_init_timeout"),
      dataXfer: ms("data_xfer_timeout"),
      dataDone: ms("data_done_timeout"),
      quit: ms("quit_timeout"),
      rset: ms("rset_timeout"),
    },
    alwaysSendEhlo: lmtp ? true : config.bool("smtp_always_send_ehlo"),
    neverSendEhlo: lmtp ? false : config.bool("smtp_never_send_ehlo"),
    tcpPort: portNumber(config.get(`${p}_tcp_port`)) ?? (lmtp ? 24 : 25),
    hostLookup: config.list(`${p}_host_lookup`),
    // The resolver asks for DNSSEC by smtp_dns_support_level (lib/dns).
    dnssec: config.get("smtp_dns_support_level") === "dnssec",
    inetProtocols: expandProtocols(config.list("inet_protocols")),
    mxAddressLimit: config.int(`${p}_mx_address_limit`),
    mxSessionLimit: config.int(`${p}_mx_session_limit`),
    fallbackRelay: config.list(`${p}_fallback_relay`),
    bindAddress: config.get(`${p}_bind_address`),
    bindAddress6: config.get(`${p}_bind_address6`),
    addressPreference: (config.get(`${p}_address_preference`) || "any").toLowerCase(),
    randomizeAddresses: config.bool(`${p}_randomize_addresses`),
    deferIfNoMxAddressFound: config.bool(`${p}_defer_if_no_mx_address_found`),
    skip5xxGreeting: config.bool(`${p}_skip_5xx_greeting`),
    skipQuitResponse: config.bool(`${p}_skip_quit_response`),
    lineLengthLimit: config.int(`${p}_line_length_limit`),
    replyLineLimit: Math.max(512, config.int("line_length_limit") || 2048),
    genericMaps: config.list(`${p}_generic_maps`),
    discardEhloKeywords: config.list(`${p}_discard_${lmtp ? "lhlo" : "ehlo"}_keywords`).map((k) =>
      k.toUpperCase()
    ),
    discardEhloKeywordAddressMaps: config.list(
      `${p}_discard_${lmtp ? "lhlo" : "ehlo"}_keyword_address_maps`,
    ),
    disableMimeOutputConversion: config.bool("disable_mime_output_conversion"),
    sendXforward: config.bool(`${p}_send_xforward_command`),
    xforwardTimeout: ms("xforward_timeout"),
    softBounce: config.bool("soft_bounce"),
    myhostname: config.get("myhostname"),
    inetInterfaces: config.list("inet_interfaces"),
    proxyInterfaces: config.list("proxy_interfaces"),
    tls: {
      level: tlsLevel,
      policyMaps: config.list(`${p}_tls_policy_maps`),
      caFile: config.get(`${p}_tls_CAfile`),
      caPath: config.get(`${p}_tls_CApath`),
      certFile: config.get(`${p}_tls_cert_file`),
      keyFile: config.get(`${p}_tls_key_file`),
      fingerprintDigest: config.get(`${p}_tls_fingerprint_digest`) || "sha256",
      fingerprintCertMatch: config.list(`${p}_tls_fingerprint_cert_match`),
      verifyCertMatch: config.list(`${p}_tls_verify_cert_match`),
      secureCertMatch: config.list(`${p}_tls_secure_cert_match`),
      servername: config.get(`${p}_tls_servername`),
      wrapperMode: config.bool(`${p}_tls_wrappermode`),
      loglevel: config.int(`${p}_tls_loglevel`),
      noteStarttlsOffer: config.bool(`${p}_tls_note_starttls_offer`),
      protocols: config.list(`${p}_tls_protocols`),
      mandatoryProtocols: config.list(`${p}_tls_mandatory_protocols`),
    },
    sasl: {
      enable: config.bool(`${p}_sasl_auth_enable`),
      passwordMaps: config.list(`${p}_sasl_password_maps`),
      mechanismFilter: config.list(`${p}_sasl_mechanism_filter`).map((m) => m.toUpperCase()),
      securityOptions: config.list(`${p}_sasl_security_options`),
      tlsSecurityOptions: config.list(`${p}_sasl_tls_security_options`),
      softBounce: config.bool(`${p}_sasl_auth_soft_bounce`),
      senderDependent: config.bool(`${p}_sender_dependent_authentication`),
    },
  };
}

/** inet_protocols as a list of ipv4/ipv6 ("all" is both). */
function expandProtocols(list: string[]): string[] {
  const out = new Set<string>();
  for (const p of list.map((x) => x.toLowerCase())) {
    if (p === "all") {
      out.add("ipv4");
      out.add("ipv6");
    } else if (p === "ipv4" || p === "ipv6") out.add(p);
  }
  return [...out];
}
