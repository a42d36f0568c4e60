// local: the local delivery agent, as Postfix's local(8).
//
// Takes delivery requests from qmgr over private/local and delivers each
// recipient through aliases (alias_maps), ~/.forward files (forward_path),
// mailbox_transport(_maps), mailbox_command(_maps), home_mailbox or the
// mail spool (mbox or maildir), fallback_transport(_maps) and luser_relay,
// with Postfix's headers, loop detection, privileges and status texts.
// The decision procedure is in recipient.ts, the deliveries in delivery.ts,
// forwarding through cleanup in forward.ts.

import type * as net from "node:net";
import type { ProgramContext } from "../../lib/program.ts";
import type { Config } from "../../lib/config/mod.ts";
import { multiServer } from "../../lib/daemon/server.ts";
import {
  agentConcurrency,
  agentEnvFromConfig,
  DeliverySession,
  readRequest,
  writeReply,
} from "../../lib/deliver/agent.ts";
import { headerValues, type MessageContent, readMessage } from "../../lib/deliver/message.ts";
import { queueFilePath } from "../../lib/queue/layout.ts";
import { fatal, warn } from "../../lib/log.ts";
import { quoteAddress, unquoteAddress } from "../../lib/address/quote.ts";
import { resolveAddress, rewriteAddress } from "../../lib/rewrite_client.ts";
import { openMap } from "../../maps/registry.ts";
import { type Dict, ReadOnlyDict } from "../../maps/dict.ts";
import { localSettings } from "./settings.ts";
import { DupFilter, type Level, type LocalEnv, type RecipientRun, type UserAttr } from "./state.ts";
import { deliverRecipient } from "./recipient.ts";
import { finishForwards } from "./forward.ts";
import { ReplyFixes, reportRecipient } from "./report.ts";
import { userByName, userByUid } from "./users.ts";
import { statusFilter } from "./status_filter.ts";

/** Delivers every recipient of the session's request. */
export async function deliverRequest(
  session: DeliverySession,
  env: LocalEnv,
  fixes: ReplyFixes,
): Promise<void> {
  const req = session.request;
  const relay = env.settings.serviceName;
  let content: MessageContent;
  try {
    content = readMessage(
      queueFilePath(env.agent.layout, req.queueName, req.queueId),
      req.dataOffset,
    );
  } catch (err) {
    warn(`${req.queueId}: read message: ${(err as Error).message}`);
    for (const rcpt of req.recipients) {
      await session.deferred(rcpt, { dsn: "4.3.0", relay, text: "error reading message file" });
    }
    return;
  }
  const loopInfo = new Set(headerValues(content, "Delivered-To").map((v) => v.toLowerCase()));
  const dup = new DupFilter(env.settings.duplicateFilterLimit);
  for (const rcpt of req.recipients) {
    const run: RecipientRun = {
      env,
      session,
      top: rcpt,
      content,
      loopInfo,
      dup,
      leaves: [],
      forwards: new Map(),
    };
    const top: Level = {
      depth: 0,
      address: rcpt.address,
      sender: req.sender,
      owner: "",
      delivered: rcpt.address,
      expType: "",
      expFrom: "",
    };
    try {
      await deliverRecipient(run, top);
      await finishForwards(run);
    } catch (err) {
      warn(`${req.queueId}: ${rcpt.address}: ${(err as Error).stack ?? err}`);
      run.leaves.push({
        kind: "deferred",
        address: rcpt.address,
        status: { dsn: "4.3.0", relay, text: "mail system configuration error" },
      });
    }
    // Everything the recipient expanded to was delivered already (duplicates).
    if (!run.leaves.some((l) => l.kind !== "trace")) fixes.results.set(rcpt.offset, "sent");
    else await reportRecipient(run, fixes);
  }
}

/** Serves one qmgr connection: request in, deliveries, reply out. */
export async function serveLocal(conn: net.Socket, env: LocalEnv): Promise<void> {
  let req;
  try {
    req = await readRequest(conn);
  } catch (err) {
    warn(`bad delivery request: ${(err as Error).message}`);
    return;
  }
  if (!req) return;
  const session = new DeliverySession(req, env.agent);
  const fixes = new ReplyFixes();
  try {
    await deliverRequest(session, env, fixes);
  } finally {
    session.close();
  }
  await writeReply(conn, fixes.apply(session.reply()));
}

/**
 * nis: tables (in alias_maps' default, "hash:/etc/aliases, nis:mail.aliases")
 * on a host without a NIS domain: Postfix warns once and finds nothing.
 */
class NoNisDict extends ReadOnlyDict {
  lookup(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
}

/** Opens a table for local(8); nis: without NIS answers "not found". */
function openLocalTable(spec: string, config: Config): Dict {
  if (spec.startsWith("nis:")) {
    warn("NIS domain name not set - NIS lookups disabled");
    return new NoNisDict("nis", spec.slice(4));
  }
  return openMap(spec, { config });
}

/** The rights of default_privs (this process's own when it cannot switch). */
function defaultPrivs(config: Config, privileged: boolean): UserAttr {
  if (!privileged) {
    const me = userByUid(Deno.uid() ?? 0);
    return {
      uid: Deno.uid() ?? 0,
      gid: Deno.gid() ?? 0,
      logname: me?.name,
      home: me?.home,
      shell: me?.shell,
    };
  }
  const name = config.get("default_privs");
  const pw = userByName(name);
  if (!pw) {
    fatal(
      `file ${config.configDir}/main.cf: parameter default_privs: unknown user name value: ${name}`,
    );
  }
  if (pw.uid === 0) {
    fatal(
      `file ${config.configDir}/main.cf: parameter default_privs: user ${name} has privileged user ID: 0`,
    );
  }
  return { uid: pw.uid, gid: pw.gid, logname: pw.name, home: pw.home, shell: pw.shell };
}

/** The agent's environment from its configuration. */
export function localEnvFromConfig(config: Config, serviceName: string): LocalEnv {
  const settings = localSettings(config, serviceName);
  const messageLimit = config.size("message_size_limit");
  if (settings.mailboxSizeLimit && settings.mailboxSizeLimit < messageLimit) {
    fatal("configuration error: mailbox_size_limit is smaller than message_size_limit");
  }
  const privileged = (Deno.uid() ?? 0) === 0;
  const tables = new Map<string, Dict>();
  return {
    settings,
    agent: agentEnvFromConfig(config),
    openTable(spec: string): Dict {
      let table = tables.get(spec);
      if (!table) {
        table = openLocalTable(spec, config);
        tables.set(spec, table);
      }
      return table;
    },
    async resolve(sender: string, address: string) {
      // Bare names become user@$myorigin first (the "local" rewrite context).
      const rewritten = unquoteAddress(
        await rewriteAddress(config, "local", quoteAddress(address)),
      );
      return resolveAddress(config, sender, rewritten);
    },
    privateDir: `${settings.queueDirectory}/private`,
    lookupUser: (name) => userByName(name),
    lookupUid: (uid) => userByUid(uid),
    defaultPrivs: defaultPrivs(config, privileged),
    privileged,
    statusFilter: statusFilter(
      config.list("local_delivery_status_filter").map((spec) => openLocalTable(spec, config)),
      "local_delivery_status_filter",
    ),
  };
}

/** Runs the local delivery service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: LocalEnv;
  return multiServer(args, ctx, (conn) => serveLocal(conn, env), {
    // Deliveries wait on files, locks and commands, not on the CPU: one
    // process serves every request qmgr sends (the identity switches are
    // synchronous sections, so concurrent deliveries never share one).
    concurrency: agentConcurrency,
    init(d) {
      env = localEnvFromConfig(d.config, d.service || "local");
      // Commands start with umask 077, as under Postfix's local: files a
      // command creates are its user's alone unless it says otherwise.
      Deno.umask(0o077);
    },
  });
}
