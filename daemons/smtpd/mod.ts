// smtpd: the SMTP server, as Postfix's smtpd(8).
//
// Accepts mail over SMTP (RFC 5321, with the ESMTP extensions Postfix
// offers), applies the smtpd_*_restrictions and limits, and hands each
// message to cleanup; replies 250 only after cleanup has committed the queue
// file. session.ts holds a connection's state, commands.ts its handlers,
// checks.ts the restrictions. `-S` (stand-alone) serves one session on
// standard input and output, for `sendmail -bs`.

import type { ProgramContext } from "../../lib/program.ts";
import { multiServer } from "../../lib/daemon/server.ts";
import { configureLog, warn } from "../../lib/log.ts";
import { loadConfig, setupLogging } from "../../lib/config/mod.ts";
import { Checker } from "./checks.ts";
import { Limits } from "./limits.ts";
import { type Resolver, rewriteResolver } from "./resolve.ts";
import { serveConnection, serveStdio } from "./server.ts";
import type { SmtpdEnv } from "./session.ts";
import { settingsFrom } from "./settings.ts";
import type { Config } from "../../lib/config/mod.ts";

export { runSession, serveConnection, serveStdio } from "./server.ts";
export type { SmtpdEnv } from "./session.ts";

/** smtpd's shared state for a configuration (tables, resolver, anvil). */
export function smtpdEnv(config: Config, service = "smtp", resolver?: Resolver): SmtpdEnv {
  const settings = settingsFrom(config);
  let tls: { cert: string; key: string } | undefined;
  if (["may", "encrypt"].includes(settings.tlsSecurityLevel) && settings.tlsCertFile) {
    try {
      tls = {
        cert: Deno.readTextFileSync(settings.tlsCertFile),
        key: Deno.readTextFileSync(settings.tlsKeyFile || settings.tlsCertFile),
      };
    } catch (err) {
      // Postfix goes on without TLS when its files are unusable, and says so.
      warn(`cannot load TLS certificate or key: ${(err as Error).message}: disabling TLS support`);
    }
  }
  return {
    tls,
    settings,
    checker: new Checker(config, resolver ?? rewriteResolver(config)),
    limits: new Limits(settings, service),
    service,
  };
}

/** Runs smtpd under the daemon runtime, or one stand-alone session with -S. */
export async function main(args: string[], ctx: ProgramContext): Promise<number> {
  if (args.includes("-S")) {
    configureLog({ program: ctx.name });
    const config = loadConfig({ program: ctx.name });
    setupLogging(config, ctx.name, { stderr: false });
    const env = smtpdEnv(config, "smtp");
    await serveStdio(env);
    env.limits.close();
    return 0;
  }
  let env: SmtpdEnv | undefined;
  return await multiServer(args, ctx, (conn) => serveConnection(conn, env!), {
    init(d) {
      env = smtpdEnv(d.config, d.service === "smtpd" ? "smtp" : d.service);
    },
  });
}
