// An in-process local(8) for tests: a temporary queue, spool and home
// directories, main.cf settings, a user table of test users (all with this
// process's uid, so no root is needed), a recording bounce service and a
// resolver that treats example.com and localhost as local.

import { configFromText } from "../../../lib/config/mod.ts";
import { DeliverySession } from "../../../lib/deliver/agent.ts";
import type { DeliverReply, DeliverRequest } from "../../../lib/deliver/request.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { ResolveFlag } from "../../../lib/rewrite_client.ts";
import { parseQueuedMessage } from "../../../daemons/qmgr/message.ts";
import * as net from "node:net";
import { encodeAttrs } from "../../../lib/ipc/attr.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { openMap } from "../../../maps/registry.ts";
import { buildAliasTable } from "../../../maps/aliases.ts";
import type { Dict } from "../../../maps/dict.ts";
import { deliverRequest } from "../../../daemons/local/mod.ts";
import { ReplyFixes } from "../../../daemons/local/report.ts";
import { localSettings } from "../../../daemons/local/settings.ts";
import type { LocalEnv } from "../../../daemons/local/state.ts";
import type { LocalUser } from "../../../daemons/local/users.ts";
import {
  type BounceCall,
  makeQueue,
  recordingBounce,
  type TestQueue,
  withLog,
  writeMessage,
} from "../qmgr/helpers.ts";

export const opts = { sanitizeOps: false, sanitizeResources: false };

/** A test setup. */
export interface LocalFixture {
  dir: string;
  q: TestQueue;
  spool: string;
  home(user: string): string;
  env: LocalEnv;
  bounce: { calls: BounceCall[] };
  users: Map<string, LocalUser>;
  /** Messages the stand-in cleanup service received, as "TYPE data" record lines. */
  forwarded: string[][];
  /** Queues a message in active and delivers it; returns the reply and the log. */
  deliver(
    recipients: string[],
    spec?: {
      sender?: string;
      body?: string[];
      attrs?: Record<string, string>;
      flags?: number;
      notify?: number;
    },
  ): Promise<{ id: string; reply: DeliverReply; log: string[] }>;
  /** Writes and builds an aliases file (hash:) and makes it alias_maps. */
  aliases(text: string): Promise<string>;
  /** The active queue file's remaining recipients after delivery. */
  remaining(id: string): string[];
  cleanup(): Promise<void>;
}

/** Builds the fixture; `mainCf` lines are added to a main.cf pointing at the temporary tree. */
export async function localFixture(
  mainCf: Record<string, string> = {},
  names = ["alice", "bob", "carol"],
): Promise<LocalFixture> {
  const q = await makeQueue();
  const dir = q.dir;
  const spool = `${dir}/spool`;
  Deno.mkdirSync(spool, { recursive: true });
  Deno.mkdirSync(`${q.layout.queueDirectory}/private`, { recursive: true });
  // Test users are not root, even when the test runs as root: the agent
  // gives root's deliveries default_privs. Nothing switches to this uid
  // (privileged is false), the files stay the process's own.
  const uid = (Deno.uid() ?? 0) || 4242;
  const gid = Deno.gid() ?? 0;
  const users = new Map<string, LocalUser>();
  for (const name of names) {
    const home = `${dir}/home/${name}`;
    Deno.mkdirSync(home, { recursive: true });
    users.set(name, { name, uid, gid, home, shell: "/bin/sh" });
  }
  const settings: Record<string, string> = {
    queue_directory: q.layout.queueDirectory,
    mail_spool_directory: spool,
    alias_maps: "",
    myhostname: "host.example.com",
    mydomain: "example.com",
    myorigin: "example.com",
    mydestination: "example.com, localhost",
    mailbox_delivery_lock: "fcntl",
    ...mainCf,
  };
  const text = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
  Deno.writeTextFileSync(`${dir}/main.cf`, text);
  const config = configFromText(dir, text);
  const bounce = recordingBounce();
  const tables = new Map<string, Dict>();
  const env: LocalEnv = {
    settings: localSettings(config, "local"),
    agent: { layout: q.layout, bounce, resolution: 2 },
    openTable(spec) {
      let t = tables.get(spec);
      if (!t) tables.set(spec, t = openMap(spec, { config }));
      return t;
    },
    resolve(_sender, address) {
      const full = address.includes("@") ? address : `${address}@example.com`;
      const domain = full.slice(full.lastIndexOf("@") + 1).toLowerCase();
      if (domain === "example.com" || domain === "localhost") {
        return Promise.resolve({
          transport: "local",
          nexthop: domain,
          recipient: full,
          flags: ResolveFlag.CLASS_LOCAL,
        });
      }
      return Promise.resolve({ transport: "smtp", nexthop: domain, recipient: full, flags: 0 });
    },
    privateDir: `${q.layout.queueDirectory}/private`,
    lookupUser: (name) => users.get(name),
    lookupUid: (id) => [...users.values()].find((u) => u.uid === id),
    defaultPrivs: { uid, gid, logname: "nobody", home: "/nonexistent", shell: "/bin/false" },
    privileged: false,
  };
  const forwarded: string[][] = [];
  const cleanup = await fakeCleanup(env.settings.cleanupService, forwarded);
  const fixture: LocalFixture = {
    forwarded,
    dir,
    q,
    spool,
    home: (user) => `${dir}/home/${user}`,
    env,
    bounce,
    users,
    async deliver(recipients, spec = {}) {
      const id = writeMessage(
        q,
        { recipients, sender: spec.sender, body: spec.body, notify: spec.notify },
        "active",
      );
      const path = queueFilePath(q.layout, "active", id);
      const msg = parseQueuedMessage(id, Deno.readFileSync(path));
      const req: DeliverRequest = {
        flags: spec.flags ?? 0,
        queueName: "active",
        queueId: id,
        dataOffset: msg.dataOffset,
        dataSize: msg.size,
        nexthop: "example.com",
        encoding: "7bit",
        smtputf8: 0,
        sender: msg.sender,
        envid: "",
        ret: 0,
        arrival: msg.arrival,
        active: Date.now() / 1000,
        attrs: spec.attrs ?? {},
        recipients: msg.recipients,
      };
      return await withLog(async (log) => {
        const session = new DeliverySession(req, env.agent);
        const fixes = new ReplyFixes();
        try {
          await deliverRequest(session, env, fixes);
        } finally {
          session.close();
        }
        return { id, reply: fixes.apply(session.reply()), log: [...log] };
      });
    },
    async aliases(text) {
      const path = `${dir}/aliases`;
      Deno.writeTextFileSync(path, text);
      await buildAliasTable(`hash:${path}`, { config });
      env.settings.aliasMaps = [`hash:${path}`];
      return path;
    },
    remaining(id) {
      const path = queueFilePath(q.layout, "active", id);
      return parseQueuedMessage(id, Deno.readFileSync(path)).recipients.map((r) => r.address);
    },
    async cleanup() {
      await cleanup.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return fixture;
}

/** The status part of each delivery log line: "to=<..>, orig_to=<..> ... status=...". */
export function statuses(log: string[]): string[] {
  return log.filter((l) => l.includes(" to=<")).map((l) => {
    const to = /to=<([^>]*)>(, orig_to=<[^>]*>)?/.exec(l)!;
    const st = /dsn=(\S+), status=(.*)$/.exec(l)!;
    return `${to[1]}${to[2] ?? ""} ${st[1]} ${st[2]}`;
  });
}

/**
 * A stand-in cleanup service: greets, takes the flags, names a queue id
 * (FWD1, FWD2, ...), collects the records up to E and accepts the message.
 */
async function fakeCleanup(
  path: string,
  messages: string[][],
): Promise<{ close(): Promise<void> }> {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const dec = new TextDecoder();
  const server = net.createServer((conn) => {
    let buf = new Uint8Array(0);
    let started = false;
    conn.write(encodeAttrs({ protocol: "cleanup" }));
    conn.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      if (!started) {
        // "flags\0N\0\0" comes first; the records follow it.
        const end = buf.indexOf(0, buf.indexOf(0) + 1);
        if (end < 0 || end + 1 >= buf.length) return;
        buf = buf.slice(end + 2);
        started = true;
        conn.write(encodeAttrs({ queue_id: `FWD${messages.length + 1}` }));
      }
      const records = decodeRecords(buf);
      if (records.at(-1)?.type === "E") {
        messages.push(records.map((r) => `${r.type} ${dec.decode(r.data)}`));
        conn.write(encodeAttrs({ status: 0, reason: "" }));
      }
    });
    conn.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
