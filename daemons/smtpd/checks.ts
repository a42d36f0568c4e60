// smtpd's access restrictions (postconf(5) smtpd_*_restrictions, access(5),
// SMTPD_ACCESS_README): restriction lists evaluated in order, each item
// permitting, rejecting, deferring or passing to the next; access tables
// with every result access(5) defines; restriction classes; the policy
// service; soft_bounce and the *_reject_code parameters.

import { networkInterfaces } from "node:os";
import * as dns from "node:dns/promises";
import type { Config } from "../../lib/config/mod.ts";
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
  type Dict,
  DictError,
  openMap,
  searchAccessAddress,
  searchAccessAddressIP,
  searchAccessDomain,
  type SearchResult,
} from "../../maps/mod.ts";
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
  actions: MessageActions;
  /** Logs an action line: kind ("reject", "reject_warning", "hold", ...) and its text. */
  log(stage: string, kind: string, text: string): void;
}

/** Which restriction list, and how its replies name what was rejected. */
type Kind = "client" | "helo" | "sender" | "recipient" | "relay" | "data" | "eod" | "etrn";

type Verdict = { kind: "permit" } | { kind: "dunno" } | { kind: "reject"; reply: SmtpReply };

const DUNNO: Verdict = { kind: "dunno" };
const PERMIT: Verdict = { kind: "permit" };

/** Evaluates restriction lists for one smtpd process (tables opened once). */
export class Checker {
  private tables = new Map<string, Dict>();
  private hostLists = new Map<string, HostList>();
  private readonly mynetworks: HostList;
  private readonly classes: Set<string>;
  private readonly access;

  constructor(readonly config: Config, readonly resolver: Resolver) {
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
    const relay = await this.run("relay", "smtpd_relay_restrictions", ctx, stage);
    if (relay) return relay;
    const rcpt = await this.run("recipient", "smtpd_recipient_restrictions", ctx, stage);
    if (rcpt) return rcpt;
    if (this.config.bool("smtpd_reject_unlisted_recipient") && ctx.recipient !== undefined) {
      const v = await this.unlisted(ctx, ctx.recipient, "recipient");
      if (v.kind === "reject") return this.finish(v.reply, ctx, stage);
    }
    return undefined;
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
    const v = await this.evaluate(this.config.list(parameter), kind, ctx, stage, 0);
    return v.kind === "reject" ? this.finish(v.reply, ctx, stage) : undefined;
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
      } else {
        v = await this.simple(lower, name, kind, ctx, stage, depth);
      }
      if (warnOnly && v.kind === "reject") {
        ctx.log(stage, "reject_warning", replyText(v.reply));
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
        return ctx.helo && !validHostname(ctx.helo) && !validAddressLiteral(ctx.helo)
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
        return ctx.helo && !validAddressLiteral(ctx.helo) && !isFqdn(ctx.helo)
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
      case "reject_unknown_client":
      case "reject_unknown_client_hostname":
        return ctx.clientName === "unknown"
          ? {
            kind: "reject",
            reply: {
              code: c.int(
                lower === "reject_unknown_reverse_client_hostname"
                  ? "unknown_client_reject_code"
                  : "unknown_client_reject_code",
              ),
              dsn: "4.7.1",
              text: `Client host rejected: cannot find your ${
                lower.includes("reverse") ? "reverse " : ""
              }hostname, [${ctx.clientAddr}]`,
            },
          }
          : DUNNO;
      case "reject_unknown_sender_domain":
        return ctx.sender
          ? await this.unknownDomain(ctx.sender, "sender", "4.1.8", "Sender address")
          : DUNNO;
      case "reject_unknown_recipient_domain":
        return ctx.recipient
          ? await this.unknownDomain(ctx.recipient, "recipient", "4.1.2", "Recipient address")
          : DUNNO;
      case "reject_unknown_helo_hostname":
      case "reject_unknown_hostname":
        if (!ctx.helo || validAddressLiteral(ctx.helo)) return DUNNO;
        return (await domainExists(ctx.helo)) === false
          ? {
            kind: "reject",
            reply: {
              code: c.int("unknown_hostname_reject_code"),
              dsn: matchDsnClass(c.int("unknown_hostname_reject_code"), "4.7.1"),
              text: `<${ctx.helo}>: Helo command rejected: Host not found`,
            },
          }
          : DUNNO;
      case "reject_unlisted_sender":
        return ctx.sender ? await this.unlisted(ctx, ctx.sender, "sender") : DUNNO;
      case "reject_unlisted_recipient":
        return ctx.recipient !== undefined
          ? await this.unlisted(ctx, ctx.recipient, "recipient")
          : DUNNO;
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
   * reject_unknown_sender/recipient_domain with the system resolver: a
   * domain with no MX, A or AAAA record is rejected; a lookup that fails
   * for another reason passes (Postfix's unknown_address_tempfail_action
   * would defer it). Domains this host receives mail for are not looked up.
   */
  private async unknownDomain(
    address: string,
    _role: string,
    dsn: string,
    label: string,
  ): Promise<Verdict> {
    const at = address.lastIndexOf("@");
    if (at < 0) return DUNNO;
    const domain = address.slice(at + 1);
    if (validAddressLiteral(domain)) return DUNNO;
    const cls = await this.classify(address);
    if (cls !== undefined && cls !== "default") return DUNNO;
    if ((await domainExists(domain)) !== false) return DUNNO;
    const code = this.config.int("unknown_address_reject_code");
    return {
      kind: "reject",
      reply: {
        code,
        dsn: matchDsnClass(code, dsn),
        text: `<${address}>: ${label} rejected: Domain not found`,
      },
    };
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
    const table = this.table(arg);
    if (!table) {
      return {
        kind: "reject",
        reply: { code: 451, dsn: "4.3.5", text: "Server configuration error" },
      };
    }
    let found: SearchResult | undefined;
    let what: Kind;
    let label: string;
    try {
      switch (lower) {
        case "check_client_access":
        case "check_reverse_client_access": {
          what = "client";
          label = "Client host";
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
      case "DEFER_IF_PERMIT":
        return DUNNO;
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
      helo: "HELO",
      sender: "MAIL",
      recipient: "RCPT",
      relay: "RCPT",
      data: "DATA",
      eod: "END-OF-MESSAGE",
      etrn: "ETRN",
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

/** Whether a domain has an MX, A or AAAA record: false when none, undefined when the lookup failed. */
async function domainExists(domain: string): Promise<boolean | undefined> {
  const gone = (err: unknown) => {
    const code = (err as { code?: string }).code;
    return code === "ENOTFOUND" || code === "ENODATA" || code === "NXDOMAIN";
  };
  let failed = false;
  for (const lookup of [dns.resolveMx, dns.resolve4, dns.resolve6]) {
    try {
      const found = await Promise.race([
        lookup(domain) as Promise<unknown[]>,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" })), 10000)
        ),
      ]);
      if (found.length > 0) return true;
    } catch (err) {
      if (!gone(err)) failed = true;
    }
  }
  return failed ? undefined : false;
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
  return /^\[(\d{1,3}\.){3}\d{1,3}\]$/.test(name) || /^\[ipv6:[0-9a-f:.]+\]$/i.test(name);
}

function isFqdn(name: string): boolean {
  return validHostname(name) && name.replace(/\.$/, "").includes(".");
}

function addressFqdn(address: string): boolean {
  const at = address.lastIndexOf("@");
  if (at < 0) return false;
  const domain = address.slice(at + 1);
  return validAddressLiteral(domain) || isFqdn(domain);
}
