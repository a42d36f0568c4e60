// The trivial-rewrite service on one client connection: a greeting naming
// the protocol, then attribute-list requests in, one reply each, in order, until the client hangs up (the
// protocol is described in lib/rewrite_client.ts). A request that is not
// understood gets Postfix's warning and the client is dropped; other
// clients are not affected.

import type * as net from "node:net";
import { type AttrList, AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { debug, info, warn } from "../../lib/log.ts";
import { REWRITE_PROTOCOL, RewriteRequest } from "../../lib/rewrite_client.ts";
import { rewriteExternal } from "./canonical.ts";
import { resolveAddress } from "./resolve.ts";
import type { Config } from "../../lib/config/mod.ts";
import { DictError } from "../../maps/mod.ts";
import { type Settings, settingsFrom } from "./settings.ts";

/** Bytes a client may send without completing a request (a runaway or hostile client). */
export const MAX_REQUEST_BYTES = 1 << 20;

/** A reply, or a reason to drop the client. */
type Outcome = { reply: Uint8Array } | { drop: string };

/**
 * Checks a request's attributes the way Postfix scans them: `names` in this
 * order after `request`. A missing or misplaced one costs the client its
 * connection (the reason is returned); one too many is only noted.
 */
function requireAttrs(req: AttrList, names: string[], from: string): string | undefined {
  const got = [...req.keys()].slice(1);
  for (let i = 0; i < names.length; i++) {
    if (i >= got.length) return `missing attribute ${names[i]} in input from ${from}`;
    if (got[i] !== names[i]) {
      return `unexpected attribute ${got[i]} from ${from} (expecting: ${names[i]})`;
    }
  }
  if (got.length > names.length) {
    warn(`unexpected attribute ${got[names.length]} from ${from} (expecting: (list terminator))`);
  }
  return undefined;
}

/** Answers one request. */
export async function answer(s: Settings, req: AttrList, from: string): Promise<Outcome> {
  const first = req.keys().next();
  if (first.done) return { drop: `missing attribute request in input from ${from}` };
  if (first.value !== "request") {
    return { drop: `unexpected attribute ${first.value} from ${from} (expecting: request)` };
  }
  const request = req.get("request")!;
  const verify = request === RewriteRequest.RESOLVE_VERIFY || request === "resolve_verify";
  if (request === RewriteRequest.RESOLVE || verify) {
    const missing = requireAttrs(req, ["sender", "address"], from);
    if (missing) return { drop: missing };
    const r = await resolveAddress(
      s,
      verify,
      req.get("sender")!,
      req.get("address")!,
    );
    debug(
      `${request}: ${
        req.get("address")
      } -> (\`${r.transport}' \`${r.nexthop}' \`${r.recipient}' ${r.flags})`,
    );
    // The first flags word is the server's status, the second the answer's.
    const head = encodeAttrs({
      flags: 0,
      transport: r.transport,
      nexthop: r.nexthop,
      recipient: r.recipient,
    });
    const tail = encodeAttrs({ flags: r.flags });
    const reply = new Uint8Array(head.length - 1 + tail.length);
    reply.set(head.subarray(0, head.length - 1));
    reply.set(tail, head.length - 1);
    return { reply };
  }
  if (request === RewriteRequest.REWRITE) {
    const missing = requireAttrs(req, ["rule", "address"], from);
    if (missing) return { drop: missing };
    const rule = req.get("rule")!;
    const ctx = rule === "local" ? s.localContext : rule === "remote" ? s.remoteContext : undefined;
    if (!ctx) return { drop: `unknown context: ${rule}` };
    const result = rewriteExternal(req.get("address")!, ctx, s.canonical);
    debug(`rewrite: ${rule}: ${req.get("address")} -> ${result}`);
    return { reply: encodeAttrs({ flags: 0, address: result }) };
  }
  return { drop: `bad command ${request}` };
}

/** The service's configuration, replaced when a table it reads is rebuilt. */
export interface ServiceState {
  config: Config;
  settings: Settings;
  reloading?: Promise<void>;
}

/** Seconds the old tables stay open after a reload, for requests still using them. */
const OLD_TABLES_GRACE_MS = 5000;

/**
 * The settings to answer with: when a table file changed (postmap, an
 * edited regexp file), the tables are opened again first, so the new
 * contents count without a restart.
 */
export function currentSettings(state: ServiceState): Settings | Promise<Settings> {
  // The common case without a promise: every microtask counts per request.
  if (!state.reloading) {
    const changed = state.settings.watch.changed();
    if (!changed) return state.settings;
    state.reloading = reload(state, changed).finally(() => state.reloading = undefined);
  }
  return state.reloading.then(() => state.settings);
}

async function reload(state: ServiceState, table: string): Promise<void> {
  info(`table ${table} has changed -- reloading`);
  const old = state.settings;
  try {
    state.settings = await settingsFrom(state.config);
  } catch (err) {
    if (!(err instanceof DictError)) throw err;
    warn(`${err.message} -- keeping the tables in use`);
    old.watch.accept();
    return;
  }
  const timer = setTimeout(() => old.watch.close(), OLD_TABLES_GRACE_MS);
  Deno.unrefTimer(timer as unknown as number);
}

/** Serves one client until it hangs up or misbehaves. */
export function serveClient(conn: net.Socket, state: ServiceState, from: string): Promise<void> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    const pending: AttrList[] = [];
    let working: Promise<void> | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    const drop = (why: string) => {
      if (done) return;
      warn(why);
      conn.destroy();
      finish();
    };
    // Requests are answered one after another, so replies keep request order
    // even when a lookup takes time.
    const work = async () => {
      while (pending.length && !done) {
        const req = pending.shift()!;
        const current = currentSettings(state);
        const settings = current instanceof Promise ? await current : current;
        const outcome = await answer(settings, req, from);
        if ("drop" in outcome) drop(outcome.drop);
        else conn.write(outcome.reply);
      }
      working = undefined;
    };
    const settled = () => working ?? Promise.resolve();
    // Clients check the protocol name before their first request.
    conn.write(encodeAttrs({ protocol: REWRITE_PROTOCOL }));
    conn.on("data", (chunk: Uint8Array) => {
      if (done) return;
      pending.push(...reader.push(chunk));
      if (reader.pending > MAX_REQUEST_BYTES) {
        drop(`request from ${from} exceeds ${MAX_REQUEST_BYTES} bytes -- dropping client`);
        return;
      }
      // work() always awaits once before it clears `working`, so this cannot stick.
      if (!working && pending.length) working = work();
    });
    conn.on("end", () => {
      settled().then(() => {
        if (reader.pending > 0 && !done) {
          warn(`unexpected end-of-input from ${from} while reading input attribute name`);
        }
        conn.end();
        finish();
      });
    });
    conn.on("error", () => finish());
    conn.on("close", () => settled().then(finish));
  });
}
