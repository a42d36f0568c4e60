// smtpd's access restrictions (postconf(5) smtpd_*_restrictions, access(5),
// SMTPD_ACCESS_README): restriction lists evaluated in order, each item
// permitting, rejecting, deferring or passing to the next; access tables
// with every result access(5) defines; restriction classes; the policy
// service; soft_bounce and the *_reject_code parameters; the DNS-based
// restrictions (unknown client/helo/sender/recipient names, DNS allow and
// block lists, MX/NS/A access checks) through Posthorn's own resolver, with
// Postfix's defer_if_permit/defer_if_reject handling of temporary failures.

import { networkInterfaces } from "node:os";
import type { Config } from "../../lib/config/mod.ts";
import { expand, MacroError } from "../../lib/config/expand.ts";
import { Resolver as DnsResolver } from "../../lib/dns/mod.ts";
import { isAddress, isIPv6Address, normalizeAddress } from "../../lib/dns/address.ts";
import {
  addressQuery,
  type DnsxlAnswer,
  DnsxlPatternError,
  domainQuery,
  lookupDnsxl,
  parseDnsxlSite,
} from "../../lib/dns/dnsxl.ts";
import { mailHostStatus } from "../../lib/dns/mailhost.ts";
import type { PeerNames, PeerStatus } from "../../lib/dns/peer.ts";
import { warn } from "../../lib/log.ts";
import {
  matchDsnClass,
  parseReplyText,
  replyText,
  type SmtpReply,
  softened,
} from "../../lib/smtp/reply.ts";
import {
  accessSettings,
  addressMapSettings,
  type Dict,
  DictError,
  openMap,
  searchAccessAddress,
  searchAccessAddressIP,
  searchAccessDomain,
  type SearchResult,
  searchVirtual,
} from "../../maps/mod.ts";
import { AddrStatus, verifyQuery, VerifyStat } from "../../lib/verify_client.ts";
import { passwdByName } from "../../lib/queue/submitter.ts";
import { type HostList, hostList } from "./match.ts";
import { askPolicy } from "./policy.ts";
import type { AddressClass, Resolver } from "./resolve.ts";

/** What a message collects from HOLD, DISCARD, FILTER, REDIRECT, PREPEND and BCC results. */
export interface MessageActions {
  hold: boolean;
  discard: boolean;
  filter?: string;
  redirect?: string;
  prepend: string[];
  bcc: string[];
}

/** A fresh set of message actions. */
export function noActions(): MessageActions {
  return { hold: false, discard: false, prepend: [], bcc: [] };
}

/** The session facts the restrictions read. */
export interface CheckContext {
  clientName: string;
  reverseName: string;
  clientAddr: string;
  clientPort: string;
  serverAddr: string;
  serverPort: string;
  helo: string;
  protocol: string;
  queueId: string;
  sender?: string;
  recipient?: string;
  rcptCount: number;
  size: number;
  illPipelining: boolean;
  etrnDomain?: string;
  saslUsername?: string;
  /** The session is under TLS. */
  tlsActive?: boolean;
  actions: MessageActions;
  /** Logs an action line: kind ("reject", "reject_warning", "hold", ...) and its text. */
  log(stage: string, kind: string, text: string): void;
}

/** Which restriction list, and how its replies name what was rejected. */
type Kind =
  | "client"
  | "reverse"
  | "helo"
  | "sender"
  | "recipient"
  | "relay"
  | "data"
  | "eod"
  | "etrn"
  | "sasl";

/**
 * A restriction's result. The deferrals are Postfix's DEFER_IF_PERMIT and
 * DEFER_IF_REJECT: remembered, and used when the command would otherwise be
 * accepted (or rejected with a 5xx reply).
 */
type Verdict =
  | { kind: "permit" }
  | { kind: "dunno" }
  | { kind: "reject"; reply: SmtpReply }
  | { kind: "defer_if_permit"; reply: SmtpReply }
  | { kind: "defer_if_reject"; reply: SmtpReply };

/** The deferrals of the restriction stage being evaluated. */
interface Pending {
  ifPermit?: SmtpReply;
  ifReject?: SmtpReply;
}

/**
 * DEFER_IF_PERMIT results of the client, HELO and sender restrictions, kept
 * until the recipient restrictions (with smtpd_delay_reject = no they ran at
 * an earlier command), as Postfix keeps them.
 */
interface StageDeferrals {
  client?: SmtpReply;
  helo?: SmtpReply;
  sender?: SmtpReply;
}

/** The restrictions that take a DNS list domain argument. */
const DNSXL_RESTRICTIONS = new Set([
  "reject_rbl_client",
  "reject_rbl",
  "permit_dnswl_client",
  "reject_rhsbl_client",
  "permit_rhswl_client",
  "reject_rhsbl_reverse_client",
  "reject_rhsbl_helo",
  "reject_rhsbl_sender",
  "reject_rhsbl_recipient",
]);

/** The client name lookup results of each session (set by the server, read by the checks). */
const peerLookups = new WeakMap<object, PeerNames>();

/** Records the client hostname lookup of a session, for reject_unknown_*client_hostname. */
export function recordPeerNames(ctx: object, names: PeerNames): void {
  peerLookups.set(ctx, names);
}

/** The session's recorded client name lookup (a copy), or one made from its current names. */
export function peerNamesOf(ctx: CheckContext): PeerNames {
  const found = peerLookups.get(ctx);
  if (found) return { ...found };
  return {
    name: ctx.clientName,
    reverseName: ctx.reverseName,
    nameStatus: ctx.clientName === "unknown" ? "perm" : "ok",
    reverseStatus: ctx.reverseName === "unknown" ? "perm" : "ok",
  };
}

/** How long a DNS list answer is reused. */
const DNSXL_CACHE_MS = 60_000;
/** How many DNS list answers are kept. */
const DNSXL_CACHE_SIZE = 1000;

const DUNNO: Verdict = { kind: "dunno" };
const PERMIT: Verdict = { kind: "permit" };

/** Evaluates restriction lists for one smtpd process (tables opened once). */
export class Checker {
  private tables = new Map<string, Dict>();
  private hostLists = new Map<string, HostList>();
  private readonly mynetworks: HostList;
  private readonly classes: Set<string>;
  private readonly access;
  private pending = new WeakMap<object, Pending>();
  private stageDeferrals = new WeakMap<object, StageDeferrals>();
  private dnsxlCache = new Map<string, { expires: number; answer: DnsxlAnswer }>();
  /** The DNS resolver (posthorn_dns_servers, else resolv.conf). */
  readonly dns: DnsResolver;

  constructor(readonly config: Config, readonly resolver: Resolver, dns?: DnsResolver) {
    this.dns = dns ?? DnsResolver.fromConfig(config);
    this.mynetworks = hostList(config.list("mynetworks"));
    this.classes = new Set(config.list("smtpd_restriction_classes"));
    this.access = accessSettings(config);
  }

  /** smtpd_client_restrictions. */
  client(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    return this.run("client", "smtpd_client_restrictions", ctx, stage);
  }

  /** smtpd_helo_restrictions. */
  helo(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    return this.run("helo", "smtpd_helo_restrictions", ctx, stage);
  }

  /** smtpd_sender_restrictions. */
  sender(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    return this.run("sender", "smtpd_sender_restrictions", ctx, stage);
  }

  /** smtpd_relay_restrictions, smtpd_recipient_restrictions, then the unlisted-recipient check. */
  async recipient(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    this.pending.set(ctx, {});
    let v = await this.evaluate(
      this.config.list("smtpd_relay_restrictions"),
      "relay",
      ctx,
      stage,
      0,
    );
    if (v.kind !== "reject") {
      v = await this.evaluate(
        this.config.list("smtpd_recipient_restrictions"),
        "recipient",
        ctx,
        stage,
        0,
      );
    }
    if (
      v.kind !== "reject" && this.config.bool("smtpd_reject_unlisted_recipient") &&
      ctx.recipient !== undefined
    ) {
      const unlisted = await this.unlisted(ctx, ctx.recipient, "recipient");
      if (unlisted.kind === "reject") v = unlisted;
    }
    const earlier = this.stageDeferrals.get(ctx) ?? {};
    return this.conclude(v, ctx, stage, earlier.client ?? earlier.helo ?? earlier.sender);
  }

  /** The implicit smtpd_reject_unlisted_sender check at MAIL/RCPT time. */
  async unlistedSender(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    if (!this.config.bool("smtpd_reject_unlisted_sender") || !ctx.sender) return undefined;
    const v = await this.unlisted(ctx, ctx.sender, "sender");
    return v.kind === "reject" ? this.finish(v.reply, ctx, stage) : undefined;
  }

  /** smtpd_data_restrictions (logged with the last recipient, as Postfix). */
  async data(
    ctx: CheckContext,
    stage: string,
    lastRecipient?: string,
  ): Promise<SmtpReply | undefined> {
    const saved = ctx.recipient;
    ctx.recipient = lastRecipient;
    try {
      return await this.run("data", "smtpd_data_restrictions", ctx, stage);
    } finally {
      ctx.recipient = saved;
    }
  }

  /** smtpd_end_of_data_restrictions. */
  endOfData(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    return this.run("eod", "smtpd_end_of_data_restrictions", ctx, stage);
  }

  /** smtpd_etrn_restrictions. */
  etrn(ctx: CheckContext, stage: string): Promise<SmtpReply | undefined> {
    return this.run("etrn", "smtpd_etrn_restrictions", ctx, stage);
  }

  /** local_header_rewrite_clients: whether headers from this client get local rewriting. */
  async localRewriteClient(ctx: CheckContext): Promise<boolean> {
    for (const item of this.config.list("local_header_rewrite_clients")) {
      const lower = item.toLowerCase();
      if (lower === "permit_inet_interfaces" && localInterface(this.config, ctx.clientAddr)) {
        return true;
      }
      if (lower === "permit_mynetworks" && await this.inMynetworks(ctx)) return true;
      if (lower === "permit_sasl_authenticated" && ctx.saslUsername) return true;
    }
    return false;
  }

  /** Whether the client matches a host list parameter (smtpd_authorized_xclient_hosts, ...). */
  hostAuthorized(ctx: CheckContext, parameter: string): Promise<boolean> {
    let list = this.hostLists.get(parameter);
    if (!list) this.hostLists.set(parameter, list = hostList(this.config.list(parameter)));
    return list.matches(ctx.clientName, ctx.clientAddr);
  }

  /** Whether the client is in $mynetworks. */
  inMynetworks(ctx: CheckContext): Promise<boolean> {
    return this.mynetworks.matches(ctx.clientName, ctx.clientAddr);
  }

  private async run(
    kind: Kind,
    parameter: string,
    ctx: CheckContext,
    stage: string,
  ): Promise<SmtpReply | undefined> {
    this.pending.set(ctx, {});
    const v = await this.evaluate(this.config.list(parameter), kind, ctx, stage, 0);
    if (kind === "client" || kind === "helo" || kind === "sender") {
      // Kept for the recipient restrictions, which apply it.
      const deferrals = this.stageDeferrals.get(ctx) ?? {};
      deferrals[kind] = v.kind === "reject" ? undefined : this.pending.get(ctx)?.ifPermit;
      this.stageDeferrals.set(ctx, deferrals);
      return this.conclude(v, ctx, stage, undefined, false);
    }
    return this.conclude(v, ctx, stage);
  }

  /**
   * The reply for a stage's verdict: a 5xx rejection becomes the stage's
   * DEFER_IF_REJECT reply; an acceptance becomes its DEFER_IF_PERMIT reply
   * (or an earlier stage's), except for the client, HELO and sender stages,
   * whose DEFER_IF_PERMIT waits for the recipient restrictions.
   */
  private conclude(
    v: Verdict,
    ctx: CheckContext,
    stage: string,
    earlier?: SmtpReply,
    applyPermit = true,
  ): SmtpReply | undefined {
    const pending = this.pending.get(ctx) ?? {};
    this.pending.delete(ctx);
    if (v.kind === "reject") {
      const reply = pending.ifReject && v.reply.code >= 500 ? pending.ifReject : v.reply;
      return this.finish(reply, ctx, stage);
    }
    const deferred = applyPermit ? pending.ifPermit ?? earlier : undefined;
    return deferred ? this.finish(deferred, ctx, stage) : undefined;
  }

  /** Remembers a deferral (the first of each sort counts, as in Postfix). */
  private defer(ctx: CheckContext, which: "ifPermit" | "ifReject", r: SmtpReply) {
    let pending = this.pending.get(ctx);
    if (!pending) this.pending.set(ctx, pending = {});
    pending[which] ??= r;
  }

  /** soft_bounce, the error counter's view and the log line of a final rejection. */
  private finish(reply: SmtpReply, ctx: CheckContext, stage: string): SmtpReply {
    const r = this.config.bool("soft_bounce") ? softened(reply) : reply;
    ctx.log(stage, "reject", replyText(r));
    return r;
  }

  /** Evaluates one restriction list. */
  private async evaluate(
    items: string[],
    kind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    if (depth > 100) {
      warn("restriction class nesting too deep");
      return this.serverError(kind, ctx);
    }
    let warnOnly = false;
    for (let i = 0; i < items.length; i++) {
      const name = items[i];
      const lower = name.toLowerCase();
      let v: Verdict;
      if (/^check_\w+_access$|^check_policy_service$/.test(lower) || lower.startsWith("check_")) {
        const arg = items[++i];
        if (arg === undefined) {
          warn(`restriction ${name} requires an argument`);
          return this.serverError(kind, ctx);
        }
        v = await this.checkWithArg(lower, arg, kind, ctx, stage, depth);
      } else if (DNSXL_RESTRICTIONS.has(lower)) {
        const arg = items[i + 1];
        if (arg === undefined) {
          warn(`restriction ${lower} requires domain name argument`);
          v = DUNNO;
        } else {
          i++;
          v = await this.dnsxl(lower, arg, ctx, stage);
        }
      } else if (lower === "sleep") {
        // sleep SECONDS: a pause, then the next restriction.
        const arg = items[++i];
        if (arg === undefined || !/^\d+$/.test(arg)) {
          warn(`restriction ${name} requires a numeric argument`);
          return this.serverError(kind, ctx);
        }
        await new Promise((r) => setTimeout(r, Number(arg) * 1000));
        v = DUNNO;
      } else {
        v = await this.simple(lower, name, kind, ctx, stage, depth);
      }
      if (warnOnly && v.kind !== "permit" && v.kind !== "dunno") {
        ctx.log(stage, "reject_warning", replyText(v.reply));
        warnOnly = false;
        continue;
      }
      if (v.kind === "defer_if_permit" || v.kind === "defer_if_reject") {
        this.defer(ctx, v.kind === "defer_if_permit" ? "ifPermit" : "ifReject", v.reply);
        warnOnly = false;
        continue;
      }
      if (lower === "warn_if_reject") {
        warnOnly = true;
        continue;
      }
      warnOnly = false;
      if (v.kind !== "dunno") return v;
    }
    return DUNNO;
  }

  /** A reply naming what was rejected, as Postfix words it: `<name>: Class rejected: text`. */
  private rejectReply(
    kind: Kind,
    ctx: CheckContext,
    code: number,
    dsn: string,
    text: string,
  ): Verdict {
    const { name, cls } = this.subject(kind, ctx);
    return {
      kind: "reject",
      reply: { code, dsn: matchDsnClass(code, dsn), text: `<${name}>: ${cls} rejected: ${text}` },
    };
  }

  private subject(kind: Kind, ctx: CheckContext): { name: string; cls: string } {
    switch (kind) {
      case "client":
        return { name: `${ctx.clientName}[${ctx.clientAddr}]`, cls: "Client host" };
      case "reverse":
        return { name: ctx.reverseName, cls: "Unverified Client host" };
      case "helo":
        return { name: ctx.helo, cls: "Helo command" };
      case "sender":
        return { name: ctx.sender ?? "", cls: "Sender address" };
      case "data":
        return { name: "DATA", cls: "Data command" };
      case "eod":
        return { name: "END-OF-MESSAGE", cls: "End-of-data" };
      case "etrn":
        return { name: ctx.etrnDomain ?? "", cls: "Etrn command" };
      case "sasl":
        return { name: ctx.saslUsername ?? "", cls: "SASL login name" };
      default:
        return { name: ctx.recipient ?? "", cls: "Recipient address" };
    }
  }

  private serverError(_kind: Kind, _ctx: CheckContext): Verdict {
    return {
      kind: "reject",
      reply: { code: 451, dsn: "4.3.5", text: "Server configuration error" },
    };
  }

  /** Restrictions without an argument. */
  private async simple(
    lower: string,
    name: string,
    kind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    const c = this.config;
    switch (lower) {
      case "permit":
        return PERMIT;
      case "dunno":
      case "warn_if_reject":
        return DUNNO;
      case "reject":
        return this.rejectReply(kind, ctx, c.int("reject_code"), "5.7.1", "Access denied");
      case "defer":
        return this.rejectReply(kind, ctx, c.int("defer_code"), "4.7.1", "Access denied");
      case "defer_if_permit":
      case "defer_if_reject": {
        const code = c.int("defer_code");
        const { name, cls } = this.subject(kind, ctx);
        return {
          kind: lower as "defer_if_permit" | "defer_if_reject",
          reply: {
            code,
            dsn: matchDsnClass(code, "4.7.0"),
            text: `<${name}>: ${cls} rejected: ${lower} requested`,
          },
        };
      }
      case "reject_plaintext_session": {
        if (ctx.tlsActive) return DUNNO;
        const code = c.int("plaintext_reject_code");
        return {
          kind: "reject",
          reply: {
            code,
            dsn: matchDsnClass(code, "4.7.1"),
            text: "Session encryption is required",
          },
        };
      }
      case "permit_tls_clientcerts":
      case "permit_tls_all_clientcerts":
        // No client certificate is ever asked for, so none was verified.
        return DUNNO;
      case "permit_mx_backup":
        return ctx.recipient ? await this.mxBackup(ctx, ctx.recipient) : DUNNO;
      case "permit_mynetworks":
        return (await this.inMynetworks(ctx)) ? PERMIT : DUNNO;
      case "permit_sasl_authenticated":
        return ctx.saslUsername ? PERMIT : DUNNO;
      case "reject_unauth_pipelining":
        return ctx.illPipelining
          ? {
            kind: "reject",
            reply: {
              code: 503,
              dsn: "5.5.0",
              text: `<${this.subject(kind, ctx).name}>: ${
                this.subject(kind, ctx).cls
              } rejected: Improper use of SMTP command pipelining`,
            },
          }
          : DUNNO;
      case "reject_unauth_destination":
      case "defer_unauth_destination":
      case "permit_auth_destination":
        return await this.authDestination(lower, ctx);
      case "reject_invalid_helo_hostname":
      case "reject_invalid_hostname":
        if (!ctx.helo) return DUNNO;
        if (ctx.helo.startsWith("[")) return this.invalidHeloAddress(ctx);
        return !validHostname(ctx.helo) && !isAddress(truncateDot(ctx.helo))
          ? this.rejectReply(
            "helo",
            ctx,
            c.int("invalid_hostname_reject_code"),
            "5.5.2",
            "Invalid name",
          )
          : DUNNO;
      case "reject_non_fqdn_helo_hostname":
      case "reject_non_fqdn_hostname":
        if (!ctx.helo) return DUNNO;
        if (ctx.helo.startsWith("[")) return this.invalidHeloAddress(ctx);
        return !isFqdn(ctx.helo)
          ? this.rejectReply(
            "helo",
            ctx,
            c.int("non_fqdn_reject_code"),
            "5.5.2",
            "need fully-qualified hostname",
          )
          : DUNNO;
      case "reject_non_fqdn_sender":
        return ctx.sender && !addressFqdn(ctx.sender)
          ? this.rejectReply(
            "sender",
            ctx,
            c.int("non_fqdn_reject_code"),
            "5.5.2",
            "need fully-qualified address",
          )
          : DUNNO;
      case "reject_non_fqdn_recipient":
        return ctx.recipient && !addressFqdn(ctx.recipient)
          ? this.rejectReply(
            "recipient",
            ctx,
            c.int("non_fqdn_reject_code"),
            "5.5.2",
            "need fully-qualified address",
          )
          : DUNNO;
      case "reject_unknown_reverse_client_hostname":
        return this.unknownClient(ctx, this.reverseStatus(ctx), "reverse hostname", "4.7.1");
      case "reject_unknown_client":
      case "reject_unknown_client_hostname":
        return this.unknownClient(ctx, this.nameStatus(ctx), "hostname", "4.7.25");
      case "reject_unknown_sender_domain":
        return ctx.sender ? await this.unknownDomain(ctx.sender, "sender") : DUNNO;
      case "reject_unknown_recipient_domain":
        return ctx.recipient ? await this.unknownDomain(ctx.recipient, "recipient") : DUNNO;
      case "reject_unknown_helo_hostname":
      case "reject_unknown_hostname":
        return ctx.helo ? await this.unknownHelo(ctx) : DUNNO;
      case "reject_unlisted_sender":
        return ctx.sender ? await this.unlisted(ctx, ctx.sender, "sender") : DUNNO;
      case "reject_unlisted_recipient":
        return ctx.recipient !== undefined
          ? await this.unlisted(ctx, ctx.recipient, "recipient")
          : DUNNO;
      case "reject_unverified_sender":
        return ctx.sender ? await this.unverified(ctx, ctx.sender, "sender") : DUNNO;
      case "reject_unverified_recipient":
        return ctx.recipient ? await this.unverified(ctx, ctx.recipient, "recipient") : DUNNO;
      case "reject_sender_login_mismatch":
      case "reject_authenticated_sender_login_mismatch":
      case "reject_known_sender_login_mismatch":
      case "reject_unauthenticated_sender_login_mismatch":
        return await this.senderLogin(lower, ctx);
      case "reject_multi_recipient_bounce":
        return ctx.sender === "" && ctx.rcptCount > 0
          ? {
            kind: "reject",
            reply: {
              code: c.int("multi_recipient_bounce_reject_code"),
              dsn: "5.5.3",
              text: "<>: Sender address rejected: Multi-recipient bounce",
            },
          }
          : DUNNO;
    }
    if (this.classes.has(name)) {
      return this.evaluate(c.list(name), kind, ctx, stage, depth + 1);
    }
    warn(`unknown smtpd restriction: "${name}"`);
    return this.serverError(kind, ctx);
  }

  /**
   * reject_unverified_sender/recipient: asks the verify service. A known
   * bounce gets unverified_*_reject_code ("undeliverable address", or
   * "unverified address" when that code is a 4xx one); a
   * deferral or a probe still under way gets unverified_*_defer_code under
   * unverified_*_tempfail_action ("unverified address"); a service failure
   * a 450 "address verification problem" under the same action. The
   * *_reject_reason parameter, when set, replaces the verify service's reason.
   */
  private async unverified(
    ctx: CheckContext,
    address: string,
    role: "sender" | "recipient",
  ): Promise<Verdict> {
    const c = this.config;
    const kind: Kind = role;
    const dsnDetail = role === "sender" ? "1.7" : "1.1";
    const r = await verifyQuery(c, address);
    const { name, cls } = this.subject(kind, ctx);
    const make = (code: number, text: string): SmtpReply => ({
      code,
      dsn: matchDsnClass(code, `5.${dsnDetail}`),
      text: `<${name}>: ${cls} rejected: ${text}`,
    });
    const action = `unverified_${role}_tempfail_action`;
    if (r.status === VerifyStat.FAIL) {
      warn(`${c.get("address_verify_service_name") || "verify"} service failure`);
      return this.tempfailAction(action, make(450, "address verification problem"));
    }
    const why = c.get(`unverified_${role}_reject_reason`) || r.why;
    switch (r.status) {
      case AddrStatus.OK:
        return DUNNO;
      case AddrStatus.BOUNCE: {
        // A 4xx reject code makes it a temporary refusal, worded as such.
        const code = c.int(`unverified_${role}_reject_code`);
        const word = code < 500 ? "unverified" : "undeliverable";
        return { kind: "reject", reply: make(code, `${word} address: ${why}`) };
      }
      case AddrStatus.DEFER:
      case AddrStatus.TODO:
        return this.tempfailAction(
          action,
          make(c.int(`unverified_${role}_defer_code`), `unverified address: ${why}`),
        );
      default:
        warn(`unknown address verification status ${r.status}`);
        return DUNNO;
    }
  }

  /**
   * The sender login restrictions (postconf(5)): smtpd_sender_login_maps
   * names the SASL login names that own a MAIL FROM address. An
   * authenticated client may only use an address its login owns
   * (reject_authenticated_*, or reject_known_* for listed addresses); an
   * unauthenticated one may not use a listed address. The null sender is
   * never checked. Without SASL the restrictions are ignored, as Postfix
   * ignores them.
   */
  private async senderLogin(lower: string, ctx: CheckContext): Promise<Verdict> {
    if (!this.saslEnabled(lower)) return DUNNO;
    if (!ctx.sender) return DUNNO;
    const authenticated = lower === "reject_sender_login_mismatch" ||
      lower === "reject_authenticated_sender_login_mismatch" ||
      lower === "reject_known_sender_login_mismatch";
    const unauthenticated = lower === "reject_sender_login_mismatch" ||
      lower === "reject_unauthenticated_sender_login_mismatch" ||
      lower === "reject_known_sender_login_mismatch";
    let owners: string[] | undefined;
    try {
      owners = await this.senderOwners(ctx.sender);
    } catch (err) {
      warn(`smtpd_sender_login_maps: table lookup problem: ${(err as Error).message}`);
      return {
        kind: "reject",
        reply: { code: 451, dsn: "4.3.0", text: `<${ctx.sender}>: Temporary lookup failure` },
      };
    }
    const mismatch = (text: string) => this.rejectReply("sender", ctx, 553, "5.7.1", text);
    if (ctx.saslUsername) {
      if (!authenticated) return DUNNO;
      if (owners === undefined && lower === "reject_known_sender_login_mismatch") return DUNNO;
      const login = ctx.saslUsername.toLowerCase();
      if (owners?.some((o) => o.toLowerCase() === login)) return DUNNO;
      return mismatch(`not owned by user ${ctx.saslUsername}`);
    }
    if (unauthenticated && owners !== undefined) return mismatch("not logged in");
    return DUNNO;
  }

  /** The login names smtpd_sender_login_maps gives for an address (virtual(5) search order). */
  private async senderOwners(sender: string): Promise<string[] | undefined> {
    const tables: Dict[] = [];
    for (const spec of this.config.list("smtpd_sender_login_maps")) {
      const t = this.table(spec);
      if (!t) throw new Error(`${spec} is unavailable`);
      tables.push(t);
    }
    if (tables.length === 0) return undefined;
    const c = this.config;
    const local = new Set(
      [...c.list("mydestination"), c.get("myorigin"), c.get("myhostname")].map((d) =>
        d.toLowerCase()
      ),
    );
    const settings = { ...addressMapSettings(c, "", (d) => local.has(d.toLowerCase())) };
    settings.propagateExtension = false;
    const hit = await searchVirtual(tables, sender.toLowerCase(), settings);
    return hit?.value.split(/[\s,]+/).filter(Boolean);
  }

  /** The SASL-only restrictions do nothing, with a warning, when SASL is off. */
  private saslEnabled(restriction: string): boolean {
    if (this.config.bool("smtpd_sasl_auth_enable")) return true;
    warn(`restriction \`${restriction}' ignored: no SASL support`);
    return false;
  }

  /** check_sasl_access TABLE: the SASL login name's access(5) result. */
  private async saslAccess(
    table: Dict,
    spec: string,
    kind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    if (!this.saslEnabled("check_sasl_access") || !ctx.saslUsername) return DUNNO;
    let value: string | undefined;
    try {
      value = await table.lookup(ctx.saslUsername.toLowerCase());
    } catch (err) {
      warn(`${spec}: table lookup problem: ${(err as Error).message}`);
      return {
        kind: "reject",
        reply: { code: 451, dsn: "4.3.0", text: `<${ctx.saslUsername}>: Temporary lookup failure` },
      };
    }
    if (value === undefined) return DUNNO;
    return this.accessResult(value, "sasl", "SASL login name", ctx, stage, depth, kind);
  }

  /** The address class, or undefined when the resolver failed (logged). */
  private async classify(address: string): Promise<AddressClass | undefined> {
    try {
      return await this.resolver.classify(address);
    } catch (err) {
      warn(`problem resolving ${address}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private lookupFailure(address: string): Verdict {
    return {
      kind: "reject",
      reply: { code: 451, dsn: "4.3.0", text: `<${address}>: Temporary lookup failure` },
    };
  }

  /** reject_unauth_destination and friends: the recipient's class decides. */
  private async authDestination(lower: string, ctx: CheckContext): Promise<Verdict> {
    if (ctx.recipient === undefined) return DUNNO;
    const cls = await this.classify(ctx.recipient);
    if (cls === undefined) return this.lookupFailure(ctx.recipient);
    const authorized = cls !== "default";
    if (lower === "permit_auth_destination") return authorized ? PERMIT : DUNNO;
    if (authorized) return DUNNO;
    let code = this.config.int("relay_domains_reject_code");
    if (lower === "defer_unauth_destination") code = code - 100 * (Math.floor(code / 100) - 4);
    return {
      kind: "reject",
      reply: {
        code,
        dsn: matchDsnClass(code, "5.7.1"),
        text: `<${ctx.recipient}>: Relay access denied`,
      },
    };
  }

  /**
   * permit_mx_backup (postconf(5)): an authorized destination is permitted;
   * otherwise the domain's MX hosts decide: permitted when this host is one
   * of the backup MX hosts but none of the primary ones (those with the best
   * preference), and, with permit_mx_backup_networks set, when every
   * address of every primary MX host is in those networks. Addresses with
   * sender-specified routing and address literals are not permitted; a
   * temporary DNS failure becomes a deferral in place of a later rejection.
   */
  private async mxBackup(ctx: CheckContext, recipient: string): Promise<Verdict> {
    const cls = await this.classify(recipient);
    if (cls === undefined) return this.lookupFailure(recipient);
    if (cls !== "default") return PERMIT;
    const at = recipient.lastIndexOf("@");
    if (at < 0) return PERMIT;
    const local = recipient.slice(0, at);
    const domain = recipient.slice(at + 1).toLowerCase();
    if (/[@%!]/.test(local) || domain.startsWith("[")) return DUNNO;
    const mx = await this.dns.query(domain, "MX");
    if (mx.status !== "ok") {
      if (mx.status !== "tempfail") return DUNNO;
      const { name, cls: what } = this.subject("recipient", ctx);
      return {
        kind: "defer_if_reject",
        reply: {
          code: 450,
          dsn: "4.4.4",
          text: `<${name}>: ${what} rejected: Unable to look up mail exchanger information: ${
            mx.reason || "Host not found, try again"
          }`,
        },
      };
    }
    const hosts = mx.records.filter((r) => r.value !== "")
      .sort((a, b) => (a.preference ?? 0) - (b.preference ?? 0));
    if (hosts.length === 0) return DUNNO;
    const best = hosts[0].preference ?? 0;
    const primaries = hosts.filter((h) => (h.preference ?? 0) === best).map((h) => h.value);
    const backups = hosts.filter((h) => (h.preference ?? 0) !== best).map((h) => h.value);
    const addresses = new Map<string, string[]>();
    for (const host of [...primaries, ...backups]) {
      addresses.set(host, await this.hostAddresses(host));
    }
    const mine = (host: string) => addresses.get(host)!.some((a) => this.ownAddress(a));
    if (primaries.some(mine) || !backups.some(mine)) return DUNNO;
    const networks = this.config.list("permit_mx_backup_networks");
    if (networks.length) {
      let list = this.hostLists.get("permit_mx_backup_networks");
      if (!list) this.hostLists.set("permit_mx_backup_networks", list = hostList(networks));
      for (const host of primaries) {
        for (const addr of addresses.get(host)!) {
          if (!(await list.matches(host, addr))) return DUNNO;
        }
      }
    }
    return PERMIT;
  }

  /** A host's IPv4 and IPv6 addresses (none when the lookups fail). */
  private async hostAddresses(host: string): Promise<string[]> {
    const out: string[] = [];
    for (const type of ["A", "AAAA"] as const) {
      const r = await this.dns.query(host, type);
      if (r.status === "ok") out.push(...r.records.map((rec) => rec.value));
    }
    return out;
  }

  /** Whether an address is one of this host's (inet_interfaces or proxy_interfaces). */
  private ownAddress(addr: string): boolean {
    return localInterface(this.config, addr) ||
      this.config.list("proxy_interfaces").includes(addr);
  }

  /** The client name's lookup status (XCLIENT may have replaced the name since). */
  private nameStatus(ctx: CheckContext): PeerStatus {
    const found = peerLookups.get(ctx);
    if (found && found.name === ctx.clientName) return found.nameStatus;
    return ctx.clientName === "unknown" ? "perm" : "ok";
  }

  /** The reverse client name's lookup status. */
  private reverseStatus(ctx: CheckContext): PeerStatus {
    const found = peerLookups.get(ctx);
    if (found && found.reverseName === ctx.reverseName) return found.reverseStatus;
    return ctx.reverseName === "unknown" ? "perm" : "ok";
  }

  /**
   * reject_unknown_(reverse_)client_hostname: unknown_client_reject_code for a
   * name that does not exist (or does not match), always 450 after a
   * temporary failure.
   */
  private unknownClient(
    ctx: CheckContext,
    status: PeerStatus,
    what: string,
    dsn: string,
  ): Verdict {
    if (status === "ok") return DUNNO;
    const code = status === "temp" ? 450 : this.config.int("unknown_client_reject_code");
    return {
      kind: "reject",
      reply: {
        code,
        dsn: matchDsnClass(code, dsn),
        text: `Client host rejected: cannot find your ${what}, [${ctx.clientAddr}]`,
      },
    };
  }

  /**
   * What a temporary DNS failure does under a *_tempfail_action parameter:
   * "defer" at once, or "defer_if_permit" (the default).
   */
  private tempfailAction(parameter: string, reply: SmtpReply): Verdict {
    const action = this.config.get(parameter).trim().toLowerCase();
    if (action === "defer") return { kind: "reject", reply };
    if (action !== "defer_if_permit") {
      warn(`bad parameter value: ${parameter} = ${action}; using defer_if_permit`);
    }
    return { kind: "defer_if_permit", reply };
  }

  /** A HELO address literal must hold a valid address ([1.2.3.4] or [IPv6:...]). */
  private invalidHeloAddress(ctx: CheckContext): Verdict {
    return validAddressLiteral(ctx.helo) ? DUNNO : this.rejectReply(
      "helo",
      ctx,
      this.config.int("invalid_hostname_reject_code"),
      "5.5.2",
      "invalid ip address",
    );
  }

  /**
   * reject_unknown_helo_hostname: the HELO name needs an A, AAAA or MX
   * record (a null MX is fine for an MTA name); an address literal must be
   * a valid address.
   */
  private async unknownHelo(ctx: CheckContext): Promise<Verdict> {
    const helo = ctx.helo;
    if (helo.startsWith("[")) return this.invalidHeloAddress(ctx);
    const status = await mailHostStatus(this.dns, helo, ["A", "AAAA", "MX"], false);
    if (status === "ok" || status === "nullmx") return DUNNO;
    if (status === "tempfail") {
      return this.tempfailAction("unknown_helo_hostname_tempfail_action", {
        code: 450,
        dsn: "4.7.1",
        text: `<${helo}>: Helo command rejected: Host not found`,
      });
    }
    const code = this.config.int("unknown_hostname_reject_code");
    return this.rejectReply(
      "helo",
      ctx,
      code,
      "4.7.1",
      status === "invalid" ? "Malformed DNS server reply" : "Host not found",
    );
  }

  /**
   * reject_unknown_sender/recipient_domain: a domain this host is not the
   * final destination for needs an MX, A or AAAA record; a null MX is
   * refused with 550/556; a temporary failure follows
   * unknown_address_tempfail_action.
   */
  private async unknownDomain(address: string, role: "sender" | "recipient"): Promise<Verdict> {
    const at = address.lastIndexOf("@");
    if (at < 0) return DUNNO;
    const domain = address.slice(at + 1);
    if (domain === "" || domain.startsWith("[")) return DUNNO;
    const cls = await this.classify(address);
    if (cls === undefined) return this.lookupFailure(address);
    if (cls === "local" || cls === "alias" || cls === "virtual") return DUNNO;
    const sender = role === "sender";
    const label = sender ? "Sender address" : "Recipient address";
    const dsn = sender ? "4.1.8" : "4.1.2";
    const status = await mailHostStatus(this.dns, domain, ["MX", "A", "AAAA"]);
    if (status === "ok") return DUNNO;
    if (status === "nullmx") {
      const code = sender ? 550 : 556;
      return {
        kind: "reject",
        reply: {
          code,
          dsn: matchDsnClass(code, sender ? "4.7.27" : "4.1.10"),
          text: `<${address}>: ${label} rejected: Domain ${domain} does not accept mail (nullMX)`,
        },
      };
    }
    if (status === "tempfail") {
      return this.tempfailAction("unknown_address_tempfail_action", {
        code: 450,
        dsn,
        text: `<${address}>: ${label} rejected: Domain not found`,
      });
    }
    const code = this.config.int("unknown_address_reject_code");
    const why = status === "invalid" ? "Malformed DNS server reply" : "Domain not found";
    return {
      kind: "reject",
      reply: {
        code,
        dsn: matchDsnClass(code, dsn),
        text: `<${address}>: ${label} rejected: ${why}`,
      },
    };
  }

  /** reject_rbl_client, permit_dnswl_client, reject_rhsbl_* and permit_rhswl_client. */
  private async dnsxl(
    lower: string,
    arg: string,
    ctx: CheckContext,
    stage: string,
  ): Promise<Verdict> {
    const site = parseDnsxlSite(arg);
    let what: string | undefined;
    let cls: string;
    let byAddress = false;
    switch (lower) {
      case "reject_rbl_client":
      case "reject_rbl":
      case "permit_dnswl_client":
        what = ctx.clientAddr;
        cls = "Client host";
        byAddress = true;
        break;
      case "reject_rhsbl_client":
      case "permit_rhswl_client":
        what = ctx.clientName.toLowerCase() === "unknown" ? undefined : ctx.clientName;
        cls = "Client host";
        break;
      case "reject_rhsbl_reverse_client":
        what = ctx.reverseName.toLowerCase() === "unknown" ? undefined : ctx.reverseName;
        cls = "Unverified Client host";
        break;
      case "reject_rhsbl_helo":
        what = ctx.helo || undefined;
        cls = "Helo command";
        break;
      case "reject_rhsbl_sender":
        what = ctx.sender || undefined;
        cls = "Sender address";
        break;
      default:
        what = ctx.recipient || undefined;
        cls = "Recipient address";
    }
    if (what === undefined) return DUNNO;
    const query = byAddress ? addressQuery(what, site.domain) : domainQuery(what, site.domain);
    if (query === undefined) return DUNNO;
    const allow = lower.startsWith("permit_");
    // Safety: an allow list never overrides reject_unauth_destination.
    if (allow && stage === "RCPT" && ctx.recipient) {
      if ((await this.authDestination("permit_auth_destination", ctx)).kind !== "permit") {
        return DUNNO;
      }
    }
    let answer: DnsxlAnswer;
    try {
      answer = await this.lookupList(query, site.filter);
    } catch (err) {
      if (!(err instanceof DnsxlPatternError)) throw err;
      warn(`RBL reply error: ${err.message}`);
      return this.serverError("client", ctx);
    }
    if (answer.status === "tempfail") {
      warn(`${query}: RBL lookup error: ${answer.why}`);
      if (!allow) return DUNNO;
      const reply = {
        code: 450,
        dsn: "4.7.1",
        text: `<${what}>: ${cls} rejected: Service unavailable`,
      };
      return { kind: "defer_if_reject", reply };
    }
    if (answer.status === "unlisted") return DUNNO;
    return allow ? PERMIT : await this.rblReply(arg, site.domain, what, cls, answer.txt, ctx);
  }

  /** A DNS list answer, from the cache when recent. */
  private async lookupList(query: string, filter?: string): Promise<DnsxlAnswer> {
    const key = `${query}=${filter ?? ""}`;
    const now = Date.now();
    const cached = this.dnsxlCache.get(key);
    if (cached && cached.expires > now) return cached.answer;
    const answer = await lookupDnsxl(this.dns, query, filter);
    if (answer.status !== "tempfail") {
      if (this.dnsxlCache.size >= DNSXL_CACHE_SIZE) this.dnsxlCache.clear();
      this.dnsxlCache.set(key, { expires: now + DNSXL_CACHE_MS, answer });
    }
    return answer;
  }

  /**
   * The reply for a listed client, name or address: rbl_reply_maps (by the
   * list argument) or default_rbl_reply, with $rbl_* and the session
   * attributes expanded once.
   */
  private async rblReply(
    arg: string,
    domain: string,
    what: string,
    cls: string,
    txt: string,
    ctx: CheckContext,
  ): Promise<Verdict> {
    let template: string | undefined;
    for (const spec of this.config.list("rbl_reply_maps")) {
      const t = this.table(spec);
      if (!t) return this.serverError("client", ctx);
      try {
        template = await t.lookup(arg);
      } catch (err) {
        warn(`${spec}: table lookup problem: ${(err as Error).message}`);
        return this.serverError("client", ctx);
      }
      if (template !== undefined) break;
    }
    const values = this.templateValues(ctx, {
      rbl_code: String(this.config.int("maps_rbl_reject_code")),
      rbl_domain: domain,
      rbl_reason: txt,
      rbl_txt: txt,
      rbl_what: what,
      rbl_class: cls,
    });
    const lookup = (name: string) => values[name]?.replaceAll("$", "$$$$");
    let text: string;
    try {
      text = expand(template ?? this.config.raw("default_rbl_reply") ?? "", lookup);
    } catch (err) {
      if (!(err instanceof MacroError) || template === undefined) throw err;
      warn(`rbl_reject_reply: bad rbl reply template for domain ${arg}: ${template}`);
      text = expand(this.config.raw("default_rbl_reply") ?? "", lookup);
    }
    const m = /^([45]\d\d) (.*)$/s.exec(text);
    if (!m) {
      warn(`rbl response code configuration error: ${text}`);
      return { kind: "reject", reply: { code: 450, dsn: "4.7.1", text: "Service unavailable" } };
    }
    const code = Number(m[1]);
    const d = /^([245]\.\d{1,3}\.\d{1,3})(?: (.*))?$/s.exec(m[2]);
    const dsn = dsnForClass(d ? d[1] : "4.7.1", cls);
    const rest = d ? d[2] ?? "" : m[2];
    return {
      kind: "reject",
      reply: { code, dsn: matchDsnClass(code, dsn), text: rest || "Service unavailable" },
    };
  }

  /** The session attributes a reply template may name (postconf(5) default_rbl_reply). */
  private templateValues(
    ctx: CheckContext,
    extra: Record<string, string>,
  ): Record<string, string> {
    const parts = (address: string | undefined) => {
      if (address === undefined) return ["", "", ""];
      if (address === "") return ["<>", "<>", ""];
      const at = address.lastIndexOf("@");
      return at < 0
        ? [address, address, ""]
        : [address, address.slice(0, at), address.slice(at + 1)];
    };
    const [sender, senderName, senderDomain] = parts(ctx.sender);
    const [recipient, recipientName, recipientDomain] = parts(ctx.recipient);
    const values: Record<string, string> = {
      client: `${ctx.clientName}[${ctx.clientAddr}]`,
      client_address: ctx.clientAddr,
      client_name: ctx.clientName,
      reverse_client_name: ctx.reverseName,
      helo_name: ctx.helo,
      sender,
      sender_name: senderName,
      sender_domain: senderDomain,
      recipient,
      recipient_name: recipientName,
      recipient_domain: recipientDomain,
      ...extra,
    };
    // smtpd_expansion_filter: what the client sent may not carry odd characters.
    for (const [k, v] of Object.entries(values)) {
      values[k] = v.replace(/[^\t\x20-\x7e]/g, "_");
    }
    return values;
  }

  /** reject_unlisted_sender/recipient: the address must be known in its class's tables. */
  private async unlisted(
    _ctx: CheckContext,
    address: string,
    role: "sender" | "recipient",
  ): Promise<Verdict> {
    const cls = await this.classify(address);
    if (cls === undefined) return this.lookupFailure(address);
    const which: Record<AddressClass, [string[], string, string] | undefined> = {
      local: [
        ["local_recipient_maps"],
        "local recipient table",
        "unknown_local_recipient_reject_code",
      ],
      alias: [["virtual_alias_maps"], "virtual alias table", "unknown_virtual_alias_reject_code"],
      virtual: [
        ["virtual_mailbox_maps", "virtual_alias_maps"],
        "virtual mailbox table",
        "unknown_virtual_mailbox_reject_code",
      ],
      relay: [
        ["relay_recipient_maps"],
        "relay recipient table",
        "unknown_relay_recipient_reject_code",
      ],
      default: undefined,
    };
    const entry = which[cls];
    if (!entry) return DUNNO;
    const [params, table, codeParam] = entry;
    const specs = params.flatMap((p) => this.config.list(p));
    // An empty local_recipient_maps (or relay_recipient_maps) turns the check off.
    if (specs.length === 0 || (cls !== "virtual" && this.config.list(params[0]).length === 0)) {
      return DUNNO;
    }
    const at = address.lastIndexOf("@");
    const local = at < 0 ? address : address.slice(0, at);
    const keys = cls === "local"
      ? [address.toLowerCase(), local.toLowerCase(), `@${address.slice(at + 1).toLowerCase()}`]
      : [
        address.toLowerCase(),
        `@${address.slice(at + 1).toLowerCase()}`,
      ];
    const delim = this.config.get("recipient_delimiter");
    if (delim && cls === "local") {
      const d = [...local].findIndex((ch) => delim.includes(ch));
      if (d > 0) keys.push(local.slice(0, d).toLowerCase());
    }
    for (const spec of specs) {
      if (/^(proxy:)?unix:passwd\.byname$/.test(spec)) {
        const base = keys.find((k) => !k.includes("@"));
        if (base && passwdByName(base)) return DUNNO;
        continue;
      }
      const t = this.table(spec.replace(/^proxy:/, ""));
      if (!t) {
        return {
          kind: "reject",
          reply: { code: 451, dsn: "4.3.0", text: `<${address}>: Temporary lookup failure` },
        };
      }
      for (const k of keys) {
        if ((await t.lookup(k).catch(() => undefined)) !== undefined) return DUNNO;
      }
    }
    const code = this.config.int(codeParam);
    const cap = role === "sender" ? "Sender address" : "Recipient address";
    return {
      kind: "reject",
      reply: {
        code,
        dsn: matchDsnClass(code, "5.1.1"),
        text: `<${address}>: ${cap} rejected: User unknown in ${table}`,
      },
    };
  }

  private table(spec: string): Dict | undefined {
    let t = this.tables.get(spec);
    if (!t) {
      try {
        t = openMap(spec);
      } catch (err) {
        if (err instanceof DictError) {
          warn(`${spec}: ${err.message}`);
          return undefined;
        }
        throw err;
      }
      this.tables.set(spec, t);
    }
    return t;
  }

  /** check_*_access TABLE and check_policy_service ENDPOINT. */
  private async checkWithArg(
    lower: string,
    arg: string,
    kind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    if (lower === "check_policy_service") return this.policy(arg, kind, ctx, stage, depth);
    const server = /^check_(client|reverse_client_hostname|helo|sender|recipient)_(mx|ns|a)_access$/
      .exec(
        lower,
      );
    const table = this.table(arg);
    if (!table) {
      return {
        kind: "reject",
        reply: { code: 451, dsn: "4.3.5", text: "Server configuration error" },
      };
    }
    if (lower === "check_sasl_access") return this.saslAccess(table, arg, kind, ctx, stage, depth);
    // No client certificate is ever asked for, so there is no fingerprint to look up.
    if (lower === "check_ccert_access") return DUNNO;
    if (server) {
      return await this.serverAccessCheck(
        lower,
        server[1],
        server[2].toUpperCase() as "MX" | "NS" | "A",
        table,
        arg,
        kind,
        ctx,
        stage,
        depth,
      );
    }
    let found: SearchResult | undefined;
    let what: Kind;
    let label: string;
    try {
      switch (lower) {
        case "check_client_access":
        case "check_reverse_client_hostname_access": {
          what = lower === "check_client_access" ? "client" : "reverse";
          label = what === "client" ? "Client host" : "Unverified Client host";
          const host = lower === "check_client_access" ? ctx.clientName : ctx.reverseName;
          if (host && host !== "unknown") {
            found = await searchAccessDomain(table, host.toLowerCase(), this.access.parentStyle);
          }
          found ??= await searchAccessAddressIP(table, ctx.clientAddr);
          break;
        }
        case "check_helo_access":
          what = "helo";
          label = "Helo command";
          if (!ctx.helo) return DUNNO;
          found = await searchAccessDomain(table, ctx.helo.toLowerCase(), this.access.parentStyle);
          break;
        case "check_sender_access":
          what = "sender";
          label = "Sender address";
          if (ctx.sender === undefined) return DUNNO;
          found = ctx.sender === ""
            ? await searchAccessDomain(
              table,
              this.config.get("smtpd_null_access_lookup_key"),
              false,
            )
            : await searchAccessAddress(table, ctx.sender, this.access);
          break;
        case "check_recipient_access":
          what = "recipient";
          label = "Recipient address";
          if (ctx.recipient === undefined) return DUNNO;
          found = await searchAccessAddress(table, ctx.recipient, this.access);
          break;
        default:
          warn(`unknown smtpd restriction: "${lower}"`);
          return this.serverError(kind, ctx);
      }
    } catch (err) {
      warn(`${arg}: table lookup problem: ${(err as Error).message}`);
      return {
        kind: "reject",
        reply: {
          code: 451,
          dsn: "4.3.0",
          text: `<${this.subject(kind, ctx).name}>: Temporary lookup failure`,
        },
      };
    }
    if (!found) return DUNNO;
    return this.accessResult(found.value, what, label, ctx, stage, depth, kind);
  }

  /**
   * check_{client,reverse_client_hostname,helo,sender,recipient}_{mx,ns,a}_access:
   * the table is searched for the MX hosts, the name servers, or the
   * addresses of a name, host names first, then their addresses. OK is not
   * allowed as a result (postconf(5)): that is a configuration error.
   */
  private async serverAccessCheck(
    restriction: string,
    subject: string,
    type: "MX" | "NS" | "A",
    table: Dict,
    spec: string,
    listKind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    let target: string | undefined;
    let what: Kind;
    switch (subject) {
      case "client":
        target = ctx.clientName;
        what = "client";
        break;
      case "reverse_client_hostname":
        target = ctx.reverseName;
        what = "reverse";
        break;
      case "helo":
        target = ctx.helo;
        what = "helo";
        break;
      case "sender":
        target = ctx.sender;
        what = "sender";
        break;
      default:
        target = ctx.recipient;
        what = "recipient";
    }
    if (!target || ((what === "client" || what === "reverse") && target === "unknown")) {
      return DUNNO;
    }
    const { cls: label } = this.subject(what, ctx);
    let value: string | undefined;
    try {
      value = await this.serverAccessValue(
        table,
        target,
        type,
        label,
        this.subject(what, ctx).name,
      );
    } catch (err) {
      warn(`${spec}: table lookup problem: ${(err as Error).message}`);
      return {
        kind: "reject",
        reply: {
          code: 451,
          dsn: "4.3.0",
          text: `<${this.subject(listKind, ctx).name}>: Temporary lookup failure`,
        },
      };
    }
    if (value === undefined) return DUNNO;
    const v = await this.accessResult(value, what, label, ctx, stage, depth, listKind);
    if (v.kind === "permit") {
      warn(`restriction ${restriction} returns OK for ${target}`);
      warn("this is not allowed for security reasons");
      warn("use DUNNO instead of OK if you want to make an exception");
      return this.serverError(listKind, ctx);
    }
    return v;
  }

  /** The access table value for the first server host (name, then address) that has one. */
  private async serverAccessValue(
    table: Dict,
    target: string,
    type: "MX" | "NS" | "A",
    label: string,
    replyName: string,
  ): Promise<string | undefined> {
    const at = target.lastIndexOf("@");
    let domain = (at >= 0 ? target.slice(at + 1) : target).replace(/\.$/, "");
    if (domain.startsWith("[")) {
      // An address literal is its own MX host; it has no name servers.
      if (type === "NS" || !domain.endsWith("]")) return undefined;
      const addr = normalizeAddress(domain.slice(1, -1).replace(/^ipv6:/i, ""));
      if (!addr) return undefined;
      return (await searchAccessAddressIP(table, addr))?.value;
    }
    let hosts: string[];
    if (type === "A") {
      hosts = [domain];
    } else {
      let result = await this.dns.query(domain, type);
      if (
        result.status === "ok" && type === "MX" && result.records.length === 1 &&
        result.records[0].value === ""
      ) {
        return undefined; // null MX
      }
      if (result.status === "nxdomain" || result.status === "nodata") {
        if (type === "MX") {
          // No MX: the domain is its own mail host.
          result = {
            ...result,
            status: "ok",
            records: [{ name: domain, type, ttl: 0, value: domain }],
          };
        } else {
          // No NS: the name servers of the nearest parent domain.
          let parent: string | undefined = domain;
          while (result.status !== "ok" && result.status !== "tempfail") {
            parent = parent.includes(".") ? parent.slice(parent.indexOf(".") + 1) : undefined;
            if (parent === undefined) break;
            domain = parent;
            result = await this.dns.query(domain, type);
          }
          // Postfix names the whole address once the search ran out of parents.
          if (parent === undefined) domain = target;
        }
      }
      if (result.status !== "ok") {
        warn(`Unable to look up ${type} host for ${domain}: ${result.reason}`);
        return undefined;
      }
      hosts = result.records.map((r) => r.value).filter((h) => h !== "");
    }
    for (const host of hosts) {
      if (isAddress(host)) {
        const hit = await searchAccessAddressIP(table, normalizeAddress(host)!);
        if (hit) return hit.value;
        continue;
      }
      if (type !== "A") {
        const hit = await searchAccessDomain(table, host.toLowerCase(), this.access.parentStyle);
        if (hit) return hit.value;
      }
      const [v4, v6] = await Promise.all([
        this.dns.query(host, "A"),
        this.dns.query(host, "AAAA"),
      ]);
      const addresses = [...v4.records, ...v6.records].map((r) => r.value);
      if (addresses.length === 0) {
        if (type !== "A") {
          const failed = v4.status === "tempfail" || v6.status === "tempfail";
          warn(
            `Unable to look up ${type} host ${host} for ${label} ${replyName}: ${
              failed ? "Temporary failure in name resolution" : "Name or service not known"
            }`,
          );
        }
        continue;
      }
      for (const addr of addresses) {
        const hit = await searchAccessAddressIP(table, addr);
        if (hit) return hit.value;
      }
    }
    return undefined;
  }

  /** What an access(5) value means. */
  private async accessResult(
    value: string,
    what: Kind,
    label: string,
    ctx: CheckContext,
    stage: string,
    depth: number,
    listKind: Kind,
  ): Promise<Verdict> {
    const v = value.trim();
    const sp = v.search(/\s/);
    const word = (sp < 0 ? v : v.slice(0, sp)).toUpperCase();
    const rest = sp < 0 ? "" : v.slice(sp + 1).trim();
    const c = this.config;
    const name = this.subject(what, ctx).name;
    const trigger = (action: string, extra = "") =>
      ctx.log(
        stage,
        action.toLowerCase(),
        `<${name}>: ${label} triggers ${action} action${extra ? " " + extra : ""}`,
      );
    if (/^\d+$/.test(v)) return PERMIT;
    switch (word) {
      case "OK":
        return PERMIT;
      case "DUNNO":
        return DUNNO;
      case "REJECT":
        return this.rejectReply(
          what,
          ctx,
          c.int("access_map_reject_code"),
          "5.7.1",
          rest || "Access denied",
        );
      case "DEFER":
        return this.rejectReply(
          what,
          ctx,
          c.int("access_map_defer_code"),
          "4.7.1",
          rest || "Access denied",
        );
      case "DEFER_IF_REJECT":
      case "DEFER_IF_PERMIT": {
        const code = c.int("access_map_defer_code");
        const d = /^([245]\.\d{1,3}\.\d{1,3})(?:\s+(.*))?$/s.exec(rest);
        return {
          kind: word === "DEFER_IF_REJECT" ? "defer_if_reject" : "defer_if_permit",
          reply: {
            code,
            dsn: matchDsnClass(code, d ? d[1] : "4.7.1"),
            text: `<${name}>: ${label} rejected: ${(d ? d[2] : rest) || "Service unavailable"}`,
          },
        };
      }
      case "HOLD":
        ctx.actions.hold = true;
        trigger("HOLD", rest ? rest : "");
        return DUNNO;
      case "DISCARD":
        ctx.actions.discard = true;
        trigger("DISCARD", rest);
        return PERMIT;
      case "FILTER":
        ctx.actions.filter = rest;
        trigger("FILTER", rest);
        return DUNNO;
      case "REDIRECT":
        ctx.actions.redirect = rest;
        trigger("REDIRECT", rest);
        return DUNNO;
      case "BCC":
        ctx.actions.bcc.push(rest);
        return DUNNO;
      case "PREPEND":
        ctx.actions.prepend.push(rest);
        return DUNNO;
      case "WARN":
        ctx.log(stage, "warn", `<${name}>: ${label} ${rest}`);
        return DUNNO;
      case "INFO":
        ctx.log(stage, "info", `<${name}>: ${label} ${rest}`);
        return DUNNO;
    }
    const numeric = parseReplyText(v, "5.7.1");
    if (numeric) {
      const dsn = numeric.dsn;
      const text = Array.isArray(numeric.text) ? numeric.text.join(" ") : numeric.text;
      return this.rejectReply(what, ctx, numeric.code, dsn, text || "Access denied");
    }
    // Anything else is a restriction list (a class name or restrictions).
    return await this.evaluate(v.split(/[\s,]+/).filter(Boolean), listKind, ctx, stage, depth + 1);
  }

  /** check_policy_service: ask, then treat the action like an access table result. */
  private async policy(
    endpoint: string,
    kind: Kind,
    ctx: CheckContext,
    stage: string,
    depth: number,
  ): Promise<Verdict> {
    const states: Record<Kind, string> = {
      client: "CONNECT",
      reverse: "CONNECT",
      helo: "HELO",
      sender: "MAIL",
      recipient: "RCPT",
      relay: "RCPT",
      data: "DATA",
      eod: "END-OF-MESSAGE",
      etrn: "ETRN",
      sasl: "MAIL",
    };
    const attrs: Record<string, string> = {
      request: "smtpd_access_policy",
      protocol_state: stage === "VRFY" ? "VRFY" : states[kind],
      protocol_name: ctx.protocol,
      helo_name: ctx.helo,
      queue_id: ctx.queueId,
      sender: ctx.sender ?? "",
      recipient: ctx.recipient ?? "",
      recipient_count: String(ctx.rcptCount),
      client_address: ctx.clientAddr,
      client_name: ctx.clientName,
      client_port: ctx.clientPort,
      reverse_client_name: ctx.reverseName,
      server_address: ctx.serverAddr,
      server_port: ctx.serverPort,
      instance: ctx.queueId || "0",
      sasl_method: "",
      sasl_username: ctx.saslUsername ?? "",
      sasl_sender: "",
      size: String(ctx.size),
      etrn_domain: ctx.etrnDomain ?? "",
      stress: "",
      ccert_subject: "",
      ccert_issuer: "",
      ccert_fingerprint: "",
      ccert_pubkey_fingerprint: "",
      encryption_protocol: "",
      encryption_cipher: "",
      encryption_keysize: "0",
      policy_context: this.config.get("smtpd_policy_service_policy_context"),
      compatibility_level: this.config.get("compatibility_level"),
      mail_version: "3.7.11",
    };
    const action = await askPolicy(this.config, endpoint, attrs);
    const what: Kind = kind === "relay" ? "recipient" : kind;
    const labels: Record<string, string> = {
      client: "Client host",
      helo: "Helo command",
      sender: "Sender address",
      recipient: "Recipient address",
      data: "Data command",
      eod: "End-of-data",
      etrn: "Etrn command",
    };
    return this.accessResult(action, what, labels[what], ctx, stage, depth, kind);
  }
}

/**
 * An enhanced status code fitted to what is rejected (postconf(5)
 * default_rbl_reply): address codes swap between sender and recipient
 * forms, and become generic for non-address rejections.
 */
function dsnForClass(dsn: string, cls: string): string {
  const m = /^([245])\.1\.(\d{1,3})$/.exec(dsn);
  if (!m) return dsn;
  const detail = Number(m[2]);
  if (cls === "Sender address") {
    if (detail >= 1 && detail <= 6) return `${m[1]}.1.${detail === 2 || detail === 4 ? 8 : 7}`;
    return dsn;
  }
  if (cls === "Recipient address") {
    if (detail === 7) return `${m[1]}.1.1`;
    if (detail === 8) return `${m[1]}.1.2`;
    return dsn;
  }
  return `${m[1]}.0.0`;
}

/** Whether `addr` is one of the addresses smtpd receives mail on (inet_interfaces). */
function localInterface(config: Config, addr: string): boolean {
  const list = config.list("inet_interfaces").map((a) => a.toLowerCase());
  if (list.includes("all")) {
    for (const ifaces of Object.values(networkInterfaces())) {
      for (const i of ifaces ?? []) if (i.address === addr) return true;
    }
    return false;
  }
  if (list.includes("loopback-only")) return addr.startsWith("127.") || addr === "::1";
  return list.includes(addr);
}

/** RFC 1035 host name syntax as Postfix's valid_hostname() checks it. */
export function validHostname(name: string): boolean {
  if (name.length > 255 || name === "") return false;
  const labels = name.replace(/\.$/, "").split(".");
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) return false;
    if (!/^[A-Za-z0-9_-]+$/.test(l) || l.startsWith("-") || l.endsWith("-")) return false;
  }
  // An all-numeric name that is not an address is not a host name.
  return !/^[0-9.]+$/.test(name);
}

/** `[1.2.3.4]` or `[ipv6:...]`. */
export function validAddressLiteral(name: string): boolean {
  const m = /^\[(ipv6:)?(.*)\]$/i.exec(name);
  if (!m) return false;
  return m[1] ? isIPv6Address(m[2]) : isAddress(m[2]) && !m[2].includes(":");
}

/** Drops one trailing dot (not of ".."), as Postfix does before checking a HELO name. */
function truncateDot(name: string): string {
  return name.length > 1 && name.endsWith(".") && !name.endsWith("..") ? name.slice(0, -1) : name;
}

function isFqdn(name: string): boolean {
  return validHostname(name) && truncateDot(name).includes(".");
}

function addressFqdn(address: string): boolean {
  const at = address.lastIndexOf("@");
  if (at < 0) return false;
  const domain = address.slice(at + 1);
  return validAddressLiteral(domain) || isFqdn(domain);
}
