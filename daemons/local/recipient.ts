// How local(8) decides what to do with one recipient, in Postfix's order:
// mail forwarding loop check (Delivered-To:), aliases (with owner- lists,
// :include:, |command and /file destinations, nesting limit), ~/.forward
// files (forward_path), the mailbox (delivery.ts: mailbox_transport(_maps),
// mailbox_command(_maps), home_mailbox, mail_spool_directory), then for an
// unknown user fallback_transport(_maps), luser_relay, or a bounce.
//
// Addresses found in an expansion are rewritten and resolved through
// trivial-rewrite: those that resolve to this local(8) service are
// delivered here, recursively; the others are forwarded as a new message
// through cleanup once the recipient's expansion is complete (forward.ts).

import { DictError } from "../../maps/dict.ts";
import { ResolveFlag } from "../../lib/rewrite_client.ts";
import { DsnNotify } from "../../lib/dsn/status.ts";
import type { RecipientStatus } from "../../lib/deliver/agent.ts";
import { warn } from "../../lib/log.ts";
import { splitExtension } from "../../maps/search.ts";
import { runAs } from "../../lib/ffi/identity.ts";
import { localExpand, MacroError, parseTokens, type Token } from "./expand.ts";
import type { ExpandType, Level, RecipientRun, UserAttr } from "./state.ts";
import type { LocalUser } from "./users.ts";
import {
  deliverCommand,
  deliverFile,
  deliverMailbox,
  passToTransport,
  transportFromMaps,
} from "./delivery.ts";

/** Alias nesting beyond this is taken for a loop (Postfix's limit). */
const MAX_LEVEL = 100;

/** The parts of a recipient address that decisions are made on. */
export interface AddressParts {
  /** The local part folded to lower case. */
  local: string;
  /** The local part without its extension. */
  user: string;
  /** The extension without the delimiter, "" when none. */
  extension: string;
  /** The delimiter found, "" when none. */
  delimiter: string;
  domain: string;
}

/** Splits `address` as local(8) does: lower case, extension off at recipient_delimiter. */
export function addressParts(
  address: string,
  delimiters: string,
  ownerRequestSpecial = true,
): AddressParts {
  const at = address.lastIndexOf("@");
  const local = (at < 0 ? address : address.slice(0, at)).toLowerCase();
  const domain = at < 0 ? "" : address.slice(at + 1);
  let split = splitExtension(local, delimiters);
  if (!split.extension && !ownerRequestSpecial && delimiters.includes("-")) {
    // owner_request_special = no: owner-list and list-request split too.
    const i = local.indexOf("-");
    if (i > 0) split = { base: local.slice(0, i), extension: local.slice(i) };
  }
  const ext = split.extension ?? "";
  return {
    local,
    user: split.base,
    extension: ext.slice(1),
    delimiter: ext.slice(0, 1),
    domain,
  };
}

/** Records an outcome for the address being delivered at `lv`. */
export function record(
  run: RecipientRun,
  lv: Level,
  kind: "sent" | "bounced" | "deferred",
  dsn: string,
  text: string,
  extra: Partial<RecipientStatus> = {},
): void {
  run.leaves.push({
    kind,
    address: lv.address,
    status: { dsn, relay: run.env.settings.serviceName, text, ...extra },
    notify: lv.notify,
  });
}

/** A 4.x.x status defers, anything else bounces. */
export function fail(run: RecipientRun, lv: Level, dsn: string, text: string): void {
  record(run, lv, dsn.startsWith("4") ? "deferred" : "bounced", dsn, text);
}

/** Delivers to the address of `lv` (Postfix's deliver_recipient()). */
export async function deliverRecipient(run: RecipientRun, parent: Level): Promise<void> {
  const s = run.env.settings;
  const lv: Level = { ...parent, depth: parent.depth + 1 };
  // The same address at the same depth is delivered once.
  if (run.dup.beenHere(`recipient ${lv.depth} ${lv.address.toLowerCase()}`)) return;
  // Each level checks its own address against the Delivered-To: headers.
  if (run.loopInfo.has(lv.address.toLowerCase())) {
    return fail(run, lv, "5.4.6", `mail forwarding loop for ${lv.address}`);
  }
  if (!s.frozenDeliveredTo) lv.delivered = lv.address;
  const parts = addressParts(lv.address, s.recipientDelimiter, s.ownerRequestSpecial);
  // An extension must not name a path (forward_path uses it in file names).
  if (parts.extension.includes("/")) {
    warn(`${run.session.request.queueId}: address with illegal extension: ${parts.local}`);
    parts.extension = "";
    parts.delimiter = "";
  }
  if (!parts.user) return fail(run, lv, "5.1.3", `null username in ${lv.address}`);
  // The delivery switch is one nesting level further down, as in Postfix.
  const sw: Level = { ...lv, depth: lv.depth + 1 };
  if (await deliverAlias(run, sw, parts.local)) return;
  if (parts.extension && await deliverAlias(run, sw, parts.user)) return;
  // A local address from a list with an owner, or from an :include: file,
  // is re-submitted, so that it gets a delivery status of its own.
  if (sw.owner && sw.owner.toLowerCase() !== parts.user) return queueForward(run, sw);
  if (sw.expType === "include") return queueForward(run, sw);
  // require_home_directory: a user whose home is missing is tried again later.
  const pw = s.requireHomeDirectory ? run.env.lookupUser(parts.user) : undefined;
  if (pw && !homeExists(run, pw)) {
    return fail(
      run,
      sw,
      "4.3.0",
      `cannot access home directory ${pw.home}: No such file or directory`,
    );
  }
  if (await deliverDotForward(run, sw, parts)) return;
  if (await deliverMailbox(run, sw, parts)) return;
  await deliverUnknown(run, sw, parts);
}

/** Whether the user's home directory exists, looked at with the user's rights. */
function homeExists(run: RecipientRun, pw: LocalUser): boolean {
  return runAs(run.env.privileged ? { uid: pw.uid, gid: pw.gid } : undefined, () => {
    try {
      return Deno.statSync(pw.home).isDirectory;
    } catch {
      return false;
    }
  });
}

/** No alias, no user: fallback_transport(_maps), luser_relay, or "unknown user". */
async function deliverUnknown(run: RecipientRun, lv: Level, parts: AddressParts): Promise<void> {
  const s = run.env.settings;
  const fallback = await transportFromMaps(run, lv, s.fallbackTransportMaps, parts.user);
  if (fallback === null) return;
  if (fallback || s.fallbackTransport) {
    return passToTransport(run, lv, fallback || s.fallbackTransport);
  }
  if (s.luserRelay) {
    let target: string;
    try {
      target = localExpand(
        s.luserRelay,
        expandAttrs(lv, parts),
        s.forwardExpansionFilter,
      ).trim();
    } catch (err) {
      warn(`bad luser_relay value: ${(err as Error).message}`);
      return fail(run, lv, "4.3.5", "mail system configuration error");
    }
    if (target) return deliverAddress(run, lv, target);
  }
  fail(run, lv, "5.1.1", `unknown user: "${parts.user}"`);
}

/** The $name values of local(8) expansions for the recipient at `lv`. */
export function expandAttrs(lv: Level, parts: AddressParts, user?: UserAttr) {
  return {
    user: parts.user,
    home: user?.home ?? "",
    shell: user?.shell ?? "",
    recipient: lv.address,
    extension: parts.extension,
    domain: parts.domain,
    local: parts.local,
    recipient_delimiter: parts.delimiter,
  };
}

/** The path of the file behind a table, for its owner; undefined for tables without one. */
function tableFile(spec: string): string | undefined {
  const colon = spec.indexOf(":");
  const type = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  if (type === "hash" || type === "btree" || type === "lmdb") return `${name}.db`;
  if (type === "cdb") return `${name}.cdb`;
  if (["texthash", "regexp", "pcre", "cidr", "sqlite"].includes(type)) return name;
  return undefined;
}

/**
 * The rights alias deliveries run with: the alias database owner's, or
 * default_privs when root owns it (or it has no file).
 */
function aliasRights(run: RecipientRun, spec: string): UserAttr | undefined {
  const env = run.env;
  const file = tableFile(spec);
  let uid = 0;
  if (file) {
    try {
      uid = Deno.statSync(file).uid ?? 0;
    } catch {
      // Gone since it was opened: treat as root's.
    }
  }
  // Root's alias database: default_privs' ids, and no user context (no HOME).
  if (uid === 0) return { uid: env.defaultPrivs.uid, gid: env.defaultPrivs.gid };
  const pw = env.lookupUid(uid);
  // undefined: the owner has no password entry.
  return pw ? { uid, gid: pw.gid, logname: pw.name, home: pw.home, shell: pw.shell } : undefined;
}

/** Looks `name` up in alias_maps and delivers to its expansion (Postfix's deliver_alias()). */
async function deliverAlias(run: RecipientRun, parent: Level, name: string): Promise<boolean> {
  const env = run.env;
  const s = env.settings;
  let lv = parent;
  // An alias that lists its own name means the user of that name.
  if (lv.expFrom && lv.expFrom.toLowerCase() === name) return false;
  lv = { ...lv, depth: lv.depth + 1 };
  if (lv.depth > MAX_LEVEL) {
    warn(`alias database loop for ${name}`);
    fail(run, lv, "5.4.6", `alias database loop for ${name}`);
    return true;
  }
  for (const listed of s.aliasMaps) {
    // local(8) opens proxied alias tables directly (local(8) SECURITY).
    const spec = listed.startsWith("proxy:") ? listed.slice(6) : listed;
    let value: string | undefined;
    let ownerValue: string | undefined;
    try {
      const table = env.openTable(spec);
      value = await table.lookup(name);
      if (value === undefined) continue;
      if (s.ownerRequestSpecial && !name.startsWith("owner-")) {
        ownerValue = await table.lookup(`owner-${name}`);
      }
    } catch (err) {
      const text = err instanceof DictError ? err.message : (err as Error).message;
      warn(`${spec}: alias database lookup error for ${name}: ${text}`);
      fail(run, lv, "4.3.0", "alias database unavailable");
      return true;
    }
    // A probe (verify(8), sendmail -bv) learns where the alias goes, no more.
    if (run.session.verifyOnly) {
      record(run, lv, "sent", "2.0.0", `aliased to ${value.trim()}`);
      return true;
    }
    const rights = aliasRights(run, spec);
    if (!rights) {
      warn(`cannot find alias database owner for ${spec}`);
      fail(run, lv, "4.3.0", "cannot find alias database owner");
      return true;
    }
    const child: Level = { ...lv, expType: "alias", expFrom: name, user: rights };
    if (ownerValue !== undefined) {
      const owner = await canonical(run, s.expandOwnerAlias ? ownerValue.trim() : `owner-${name}`);
      child.owner = owner;
      child.sender = owner;
      // A list's deliveries do not carry the original recipient on.
      child.origReset = true;
    } else if (s.resetOwnerAlias) {
      child.owner = "";
    }
    const tokens = parseTokens(value);
    if (!tokens.length) {
      warn(`no recipient in alias lookup result for ${name}`);
      fail(run, lv, "4.3.0", "alias database unavailable");
      return true;
    }
    // RFC 3461 6.2: the expansion reports success once, as "expanded" (a
    // list with an owner: "delivered"); its members do not report it.
    const notify = lv.notify ?? run.top.notify;
    if (notify & DsnNotify.SUCCESS) {
      child.notify = notify === DsnNotify.SUCCESS ? DsnNotify.NEVER : notify & ~DsnNotify.SUCCESS;
    }
    for (const token of tokens) await deliverToken(run, child, token);
    if (notify & DsnNotify.SUCCESS) {
      run.leaves.push({
        kind: "trace",
        address: lv.address,
        action: ownerValue !== undefined ? "delivered" : "expanded",
        status: { dsn: "2.0.0", relay: s.serviceName, text: "alias expanded" },
      });
    }
    return true;
  }
  return false;
}

/** user@$myorigin for a bare name, as the "local" rewrite context gives it. */
async function canonical(run: RecipientRun, address: string): Promise<string> {
  if (address.includes("@")) return address;
  try {
    return (await run.env.resolve("", address)).recipient;
  } catch {
    return address;
  }
}

/** Delivers through the user's .forward file, if there is one (Postfix's deliver_dotforward()). */
async function deliverDotForward(
  run: RecipientRun,
  lv: Level,
  parts: AddressParts,
): Promise<boolean> {
  const env = run.env;
  const s = env.settings;
  // A user listed in their own .forward gets the mailbox.
  if (lv.expType === "forward" && lv.expFrom === parts.user) return false;
  if (!s.forwardPath.trim()) return false;
  const pw = env.lookupUser(parts.user);
  if (!pw) return false;
  const user: UserAttr = {
    uid: pw.uid,
    gid: pw.gid,
    logname: pw.name,
    home: pw.home,
    shell: pw.shell,
  };
  let paths: string[];
  try {
    paths = localExpand(s.forwardPath, expandAttrs(lv, parts, user), s.forwardExpansionFilter)
      .split(/[\s,]+/).filter((p) => p !== "");
  } catch (err) {
    warn(`bad forward_path value: ${(err as MacroError).message}`);
    fail(run, lv, "4.3.5", "mail system configuration error");
    return true;
  }
  const found = readForwardFile(user, env.privileged, [...new Set(paths)]);
  if (found === undefined) return false;
  if (typeof found !== "string") {
    fail(run, lv, "4.3.0", `cannot open ${found.path}: ${found.error}`);
    return true;
  }
  const tokens = found.split("\n").filter((l) => !/^\s*(#|$)/.test(l)).flatMap(parseTokens);
  // An empty .forward means: no forwarding.
  if (!tokens.length) return false;
  const child: Level = { ...lv, expType: "forward", expFrom: parts.user, user };
  for (const token of tokens) await deliverToken(run, child, token);
  return true;
}

/**
 * Reads the first .forward file of `paths` that exists, with the user's
 * rights; undefined when none does, an error for one that cannot be read.
 */
function readForwardFile(
  user: UserAttr,
  privileged: boolean,
  paths: string[],
): string | { path: string; error: string } | undefined {
  return runAs(privileged ? { uid: user.uid, gid: user.gid } : undefined, () => {
    for (const path of paths) {
      try {
        const st = Deno.statSync(path);
        if (!st.isFile) continue;
        // Only the user's own (or root's) file, and one nobody else may change.
        if (st.uid !== 0 && st.uid !== user.uid) {
          warn(`file ${path} has bad owner uid ${st.uid}`);
          continue;
        }
        if ((st.mode ?? 0) & 0o002) {
          warn(`file ${path} is world writable`);
          continue;
        }
        return Deno.readTextFileSync(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        if (err instanceof Deno.errors.PermissionDenied) continue;
        return { path, error: (err as Error).message };
      }
    }
    return undefined;
  });
}

/** Delivers to one destination of an alias, .forward or :include: expansion. */
function deliverToken(run: RecipientRun, lv: Level, token: Token): Promise<void> {
  switch (token.kind) {
    case "command":
      return deliverCommand(run, lv, token.command, lv.expType);
    case "file":
      return deliverFile(run, lv, token.path, lv.expType);
    case "include":
      return deliverInclude(run, lv, token.path);
    case "address":
      return deliverAddress(run, lv, token.address);
  }
}

/** Delivers to the destinations listed in an :include: file (Postfix's deliver_include()). */
async function deliverInclude(run: RecipientRun, lv: Level, path: string): Promise<void> {
  const env = run.env;
  if (!path.startsWith("/")) {
    warn(`:include:${path} uses a relative path`);
    return fail(run, lv, "5.3.5", "mail system configuration error");
  }
  if (run.dup.beenHere(`include ${path}`)) return;
  const rights = lv.user ?? env.defaultPrivs;
  const read = runAs(
    env.privileged ? { uid: rights.uid, gid: rights.gid } : undefined,
    (): { text: string; uid: number; gid: number } | { error: string } => {
      try {
        const st = Deno.statSync(path);
        if (!st.isFile) return { error: "not a regular file" };
        return { text: Deno.readTextFileSync(path), uid: st.uid ?? 0, gid: st.gid ?? 0 };
      } catch (err) {
        return { error: osText(err) };
      }
    },
  );
  if ("error" in read) {
    warn(`unable to lookup :include: file ${path}: ${read.error}`);
    return fail(run, lv, "5.3.5", "mail system configuration error");
  }
  let user: UserAttr = { uid: env.defaultPrivs.uid, gid: env.defaultPrivs.gid };
  if (read.uid !== 0) {
    const pw = env.lookupUid(read.uid);
    user = pw
      ? { uid: read.uid, gid: pw.gid, logname: pw.name, home: pw.home, shell: pw.shell }
      : { uid: read.uid, gid: read.gid };
  }
  const child: Level = { ...lv, expType: "include", user };
  const tokens = read.text.split("\n").filter((l) => !/^\s*(#|$)/.test(l)).flatMap(parseTokens);
  for (const token of tokens) await deliverToken(run, child, token);
}

/** strerror-style text of a file operation error. */
export function osText(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "Is a directory";
  const m = /^(.*?) \(os error \d+\)/.exec((err as Error).message ?? "");
  return m ? m[1] : (err as Error).message ?? String(err);
}

/**
 * Rewrites and resolves an address from an expansion: delivered here when
 * it resolves to this service, otherwise queued for forwarding (Postfix's
 * deliver_resolve_addr()).
 */
export async function deliverAddress(run: RecipientRun, lv: Level, address: string): Promise<void> {
  let r;
  try {
    r = await run.env.resolve(lv.sender, address);
  } catch (err) {
    warn(`address resolver: ${(err as Error).message}`);
    return fail(run, { ...lv, address }, "4.3.0", "address resolver failure");
  }
  if (r.flags & ResolveFlag.FAIL) {
    return fail(run, { ...lv, address }, "4.3.0", "address resolver failure");
  }
  if (r.flags & ResolveFlag.ERROR) {
    return fail(run, { ...lv, address }, "5.1.3", `bad address syntax: ${address}`);
  }
  if (r.transport === run.env.settings.serviceName) {
    return deliverRecipient(run, { ...lv, address: r.recipient });
  }
  queueForward(run, { ...lv, address: r.recipient });
}

/** Adds the address of `lv` to the copy forwarded with its sender (Postfix's deliver_indirect()). */
function queueForward(run: RecipientRun, lv: Level): void {
  const list = run.forwards.get(lv.sender) ?? [];
  if (!list.some((f) => f.address === lv.address)) {
    list.push({
      address: lv.address,
      delivered: lv.delivered,
      orig: lv.origReset ? "" : run.top.origRcpt || run.top.address,
      list: lv.origReset === true,
    });
  }
  run.forwards.set(lv.sender, list);
}

/** Whether a delivery context may use a destination kind (allow_mail_to_commands/files). */
export function allowed(allowedIn: Set<string>, expType: ExpandType): boolean {
  return expType === "" || allowedIn.has(expType);
}
