// The state of one local(8) delivery: what is shared by everything done for
// one recipient of a request (the message, the loop and duplicate filters,
// the outcomes so far) and what each level of alias/.forward/:include:
// expansion carries down (current address, envelope sender, owner, the
// Delivered-To address, privileges), as Postfix's LOCAL_STATE and USER_ATTR.

import type { DeliverRecipient } from "../../lib/deliver/request.ts";
import type { AgentEnv, DeliverySession, RecipientStatus } from "../../lib/deliver/agent.ts";
import type { MessageContent } from "../../lib/deliver/message.ts";
import type { Dict } from "../../maps/dict.ts";
import type { ResolveResult } from "../../lib/rewrite_client.ts";
import type { LocalSettings } from "./settings.ts";
import type { LocalUser } from "./users.ts";
import type { BiffTarget } from "./biff.ts";
import type { StatusFilter } from "./status_filter.ts";

/** Rights of a delivery context: files and commands run with them. */
export interface UserAttr {
  uid: number;
  gid: number;
  /** Login name, home and shell when the context is a user's. */
  logname?: string;
  home?: string;
  shell?: string;
}

/** Where an address came from: the expansion type that allow_mail_to_* restrict. */
export type ExpandType = "" | "alias" | "forward" | "include";

/** What one expansion level carries. */
export interface Level {
  depth: number;
  /** The recipient being delivered at this level (internal form). */
  address: string;
  /** The envelope sender (an owner- alias may replace it). */
  sender: string;
  /** The owner- alias in force, "" when none. */
  owner: string;
  /** The address Delivered-To: names (frozen at the start with frozen_delivered_to). */
  delivered: string;
  expType: ExpandType;
  /** The alias name or user whose expansion this level is part of. */
  expFrom: string;
  /** The rights of the current expansion context; undefined before any. */
  user?: UserAttr;
  /** Set below a list with an owner-: forwarded copies carry no original recipient. */
  origReset?: boolean;
  /** DSN NOTIFY in force below an alias expansion (the recipient's otherwise). */
  notify?: number;
}

/** One outcome of a delivery attempt for a (possibly expanded) address. */
export type Leaf =
  | {
    kind: "sent" | "bounced" | "deferred";
    address: string;
    status: RecipientStatus;
    /** DSN NOTIFY in force for this delivery (an alias expansion drops SUCCESS). */
    notify?: number;
  }
  | { kind: "passed"; outcome: "sent" | "bounced" | "deferred" }
  /** A success notice entry only ("expanded" by an alias), no delivery. */
  | { kind: "trace"; address: string; action: string; status: RecipientStatus };

/** A recipient handed to cleanup as part of a forwarded copy. */
export interface ForwardRcpt {
  address: string;
  delivered: string;
  /** The original recipient to record (O record), "" for none. */
  orig: string;
  /** From a list with an owner- alias: no DSN envelope id, RET or ORCPT either. */
  list: boolean;
}

/** Hooks and tables local(8) uses; tests replace the resolver and the clock. */
export interface LocalEnv {
  settings: LocalSettings;
  agent: AgentEnv;
  /** Opens `type:name` tables (cached per process). */
  openTable(spec: string): Dict;
  /** Rewrites a bare name to user@$myorigin ("local" context) and resolves it. */
  resolve(sender: string, address: string): Promise<ResolveResult>;
  /** Where the transports' sockets are (private/NAME under this directory). */
  privateDir: string;
  /** The password-file entry of a user (tests give their own table). */
  lookupUser(name: string): LocalUser | undefined;
  /** The entry of a uid (alias database and :include: file owners). */
  lookupUid(uid: number): LocalUser | undefined;
  /** The rights of default_privs. */
  defaultPrivs: UserAttr;
  /** Whether this process can take other users' rights (runs as root). */
  privileged: boolean;
  /** Where biff notifications go (default: comsat on localhost). */
  biffTarget?: BiffTarget;
  /** local_delivery_status_filter, when set. */
  statusFilter?: StatusFilter;
}

/** Remembers what was delivered, up to duplicate_filter_limit entries (Postfix's been_here). */
export class DupFilter {
  private seen = new Set<string>();
  constructor(private readonly limit: number) {}

  /** True when `key` was seen before; otherwise remembers it (while there is room). */
  beenHere(key: string): boolean {
    if (this.seen.has(key)) return true;
    if (this.limit <= 0 || this.seen.size < this.limit) this.seen.add(key);
    return false;
  }
}

/** Everything done for one recipient of a request. */
export interface RecipientRun {
  env: LocalEnv;
  session: DeliverySession;
  /** The recipient as qmgr sent it. */
  top: DeliverRecipient;
  content: MessageContent;
  /** Delivered-To: addresses already in the message, lower case. */
  loopInfo: Set<string>;
  dup: DupFilter;
  leaves: Leaf[];
  /** Forwarded copies to submit, by envelope sender. */
  forwards: Map<string, ForwardRcpt[]>;
}
