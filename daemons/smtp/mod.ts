// smtp, lmtp: the SMTP and LMTP delivery agents, as Postfix's smtp(8) and
// lmtp(8).
//
// Takes delivery requests from qmgr, finds the servers for the next hop (MX
// lookup, fallback relays; LMTP over TCP or a unix-domain socket), and
// holds an SMTP or LMTP conversation with them: EHLO/LHLO, STARTTLS and AUTH
// as configured, MAIL/RCPT/DATA pipelined when offered, then logs and
// reports each recipient sent, bounced or deferred. The program name (or the
// master.cf service) says which protocol: lmtp reads the lmtp_* parameters.
// Sessions are shared through scache(8) as smtp_connection_cache_on_demand
// and smtp_connection_cache_destinations say (cache.ts); TLS sessions are
// never cached (Postfix needs smtp_tls_connection_reuse and tlsproxy(8) for
// that). smtp_header_checks and the other restricted content checks apply
// to the message as sent (header_checks.ts).

import { lookup } from "node:dns/promises";
import type { ProgramContext } from "../../lib/program.ts";
import { configureLog } from "../../lib/log.ts";
import { multiServer } from "../../lib/daemon/server.ts";
import {
  agentConcurrency,
  agentEnvFromConfig,
  handleDeliveryConnection,
} from "../../lib/deliver/agent.ts";
import type { AgentEnv } from "../../lib/deliver/agent.ts";
import { Resolver } from "../../lib/dns/mod.ts";
import type { Config } from "../../lib/config/mod.ts";
import { smtpSettings } from "./settings.ts";
import { type NativeLookup, ownAddresses } from "./nexthop.ts";
import { deliverSmtp, type SmtpEnv } from "./deliver.ts";
import { genericMapper } from "./generic.ts";
import { replyFilter, statusFilter } from "./filters.ts";
import { setTlsTableDirectory } from "./tls.ts";
import { setSaslTableDirectory } from "./sasl.ts";
import { cacheSettings, ConnectionCache } from "./cache.ts";
import { smtpChecksFromConfig } from "./header_checks.ts";
import { ScacheClient } from "../../lib/scache_client.ts";

/** Host addresses from the system resolver (getaddrinfo), for smtp_host_lookup = native. */
export const nativeLookup: NativeLookup = async (host) =>
  (await lookup(host, { all: true })).map((a) => a.address);

/**
 * The delivery environment of an smtp or lmtp process; `service` (the
 * master.cf service name) names its sessions in the connection cache.
 */
export function smtpEnvFromConfig(config: Config, program: string, service = program): SmtpEnv {
  const settings = smtpSettings(config, program);
  setTlsTableDirectory(config.configDir);
  setSaslTableDirectory(config.configDir);
  const resolver = Resolver.fromConfig(config);
  return {
    settings,
    resolve: {
      dns: { query: (name, type) => resolver.query(name, type) },
      native: nativeLookup,
      ownAddresses: ownAddresses(settings),
    },
    layout: agentEnvFromConfig(config).layout,
    generic: genericMapper(config, settings.genericMaps),
    configDir: config.configDir,
    replyFilter: replyFilter(config, settings.prefix),
    statusFilter: statusFilter(config, settings.prefix),
    checks: smtpChecksFromConfig(config, settings.prefix),
    cache: new ConnectionCache(
      ScacheClient.fromConfig(config),
      cacheSettings(config, settings.prefix),
      service,
    ),
  };
}

/** Runs the smtp (or lmtp) delivery service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  configureLog({ program: ctx.name });
  let agent: AgentEnv;
  let env: SmtpEnv;
  return multiServer(
    args,
    ctx,
    (conn) => handleDeliveryConnection(conn, agent, (s) => deliverSmtp(s, env)),
    {
      // Each request has its own server connection, so one process serves
      // every request qmgr sends at once (Postfix runs one process per
      // delivery; a Deno process costs too much memory to start twenty).
      concurrency: agentConcurrency,
      init(d) {
        const lmtp = ctx.name === "lmtp" || d.service === "lmtp" || ctx.program === "lmtp";
        agent = agentEnvFromConfig(d.config);
        env = smtpEnvFromConfig(d.config, lmtp ? "lmtp" : "smtp", d.service || ctx.name);
      },
    },
  );
}
