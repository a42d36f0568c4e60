// The SMTP client's SASL authentication (smtp_sasl_auth_enable): a
// username:password from smtp_sasl_password_maps (by sender when
// smtp_sender_dependent_authentication, then the server's host name, then
// the next-hop destination), a mechanism the server offers that
// smtp_sasl_mechanism_filter and the security options allow (CRAM-MD5,
// PLAIN, LOGIN), and Postfix's failure texts.

import { createHmac } from "node:crypto";
import type { DeliverRequest } from "../../lib/deliver/request.ts";
import { openMap } from "../../maps/mod.ts";
import type { Dict } from "../../maps/mod.ts";
import { warn } from "../../lib/log.ts";
import type { Destination, ServerAddress } from "./nexthop.ts";
import type { SmtpSettings } from "./settings.ts";
import type { ServerFeatures } from "./session.ts";
import type { ServerReply, SmtpStream } from "./stream.ts";
import { type Failure, localFailure, saidFailure, serverName, softenedFailure } from "./failure.ts";

// Opened once per settings (one per process), on first use.
const passwordTables = new WeakMap<SmtpSettings, Dict[]>();
let tableCwd = "";

/** Sets the directory relative table names are opened from (the config directory). */
export function setSaslTableDirectory(dir: string): void {
  tableCwd = dir;
}

/** The username:password for this delivery, or undefined (then no AUTH is tried). */
export async function saslPasswordFor(
  s: SmtpSettings,
  req: DeliverRequest,
  dest: Destination,
  server: ServerAddress,
): Promise<string | undefined> {
  if (!s.sasl.passwordMaps.length) return undefined;
  let tables = passwordTables.get(s);
  if (!tables) {
    tables = s.sasl.passwordMaps.map((spec) => openMap(spec, { cwd: tableCwd || undefined }));
    passwordTables.set(s, tables);
  }
  const keys: string[] = [];
  if (s.sasl.senderDependent && req.sender) keys.push(req.sender, "@" + req.sender.split("@")[1]);
  keys.push(server.host, dest.text, dest.name);
  for (const key of keys) {
    if (!key) continue;
    for (const t of tables) {
      try {
        const v = await t.lookup(key);
        if (v !== undefined) return v;
      } catch (err) {
        warn(`${s.prefix}_sasl_password_maps lookup error for "${key}": ${(err as Error).message}`);
        return undefined;
      }
    }
  }
  return undefined;
}

/** Mechanisms this client speaks, best first. */
const SUPPORTED = ["CRAM-MD5", "PLAIN", "LOGIN"];
const PLAINTEXT = new Set(["PLAIN", "LOGIN"]);

/** The mechanism to use, or undefined when none is allowed. */
export function chooseMechanism(
  offered: string[],
  s: SmtpSettings,
  tls: boolean,
): string | undefined {
  const options = tls ? s.sasl.tlsSecurityOptions : s.sasl.securityOptions;
  const noPlaintext = options.includes("noplaintext");
  const filter = s.sasl.mechanismFilter;
  return SUPPORTED.find((m) =>
    offered.includes(m) && (!filter.length || filter.includes(m)) &&
    !(noPlaintext && PLAINTEXT.has(m))
  );
}

const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** The AUTH step for a conversation, or undefined when there is nothing to authenticate with. */
export function saslHook(
  stream: SmtpStream,
  server: ServerAddress,
  s: SmtpSettings,
  password: string | undefined,
): ((features: ServerFeatures) => Promise<Failure | undefined>) | undefined {
  if (password === undefined) return undefined;
  const colon = password.indexOf(":");
  const user = colon >= 0 ? password.slice(0, colon) : password;
  const pass = colon >= 0 ? password.slice(colon + 1) : "";
  return async (features) => {
    // A server that offers no AUTH gets none (Postfix goes on without it).
    if (!features.auth.length) return undefined;
    const tls = "encrypted" in stream.socket;
    const mech = chooseMechanism(features.auth, s, tls);
    if (!mech) {
      return localFailure(
        server,
        "4.7.0",
        `SASL authentication failed: server ${
          serverName(server)
        } offered no compatible authentication mechanisms for this type of connection security`,
      );
    }
    const t = s.timeouts.helo;
    const send = async (line: string): Promise<ServerReply> => {
      await stream.write(line + "\r\n", t);
      return await stream.readReply(t);
    };
    let r: ServerReply;
    if (mech === "PLAIN") {
      r = await send(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`);
    } else if (mech === "LOGIN") {
      r = await send("AUTH LOGIN");
      if (r.code === 334) r = await send(b64(user));
      if (r.code === 334) r = await send(b64(pass));
    } else {
      r = await send("AUTH CRAM-MD5");
      if (r.code === 334) {
        const challenge = atob(r.lines[0] ?? "");
        const digest = createHmac("md5", pass).update(challenge, "latin1").digest("hex");
        r = await send(b64(`${user} ${digest}`));
      }
    }
    if (r.code === 235) return undefined;
    if (r.code === 334) {
      // The server wants more than the mechanism has: end the exchange.
      await stream.write("*\r\n", t);
      r = await stream.readReply(t);
    }
    const f: Failure = {
      ...saidFailure(server, r, "AUTH command"),
      text: `SASL authentication failed; server ${serverName(server)} said: ${r.text}`,
    };
    return s.sasl.softBounce ? softenedFailure(f) : f;
  };
}
