// check_policy_service: the SMTPD_POLICY_README protocol. smtpd sends
// name=value lines ended by an empty line over unix: or inet:, the server
// answers action=... and an empty line; the connection is kept for the next
// request up to smtpd_policy_service_max_idle/_max_ttl/_request_limit.

import * as net from "node:net";
import type { Config } from "../../lib/config/mod.ts";
import { warn } from "../../lib/log.ts";

/** One policy server connection, reused between requests. */
class PolicyConnection {
  private socket?: net.Socket;
  private buffer = "";
  private waiting?: () => void;
  private closed = true;
  private opened = 0;
  private lastUsed = 0;
  private requests = 0;

  constructor(readonly endpoint: string, readonly config: Config) {}

  private connect(): Promise<void> {
    const spec = this.endpoint.replace(/^(unix|inet):/, "");
    const isInet = this.endpoint.startsWith("inet:") ||
      (!this.endpoint.startsWith("unix:") && !spec.startsWith("/") && spec.includes(":"));
    let path = spec;
    if (!isInet && !spec.startsWith("/")) {
      path = `${this.config.get("queue_directory")}/${spec}`;
    }
    return new Promise((resolve, reject) => {
      const at = spec.lastIndexOf(":");
      const socket = isInet
        ? net.connect({
          host: spec.slice(0, at).replace(/^\[|\]$/g, ""),
          port: Number(spec.slice(at + 1)),
        })
        : net.connect({ path });
      socket.setNoDelay?.(true);
      socket.once("connect", () => {
        this.socket = socket;
        this.closed = false;
        this.buffer = "";
        this.opened = Date.now();
        this.requests = 0;
        resolve();
      });
      socket.once("error", (err) => {
        this.closed = true;
        reject(err);
        this.waiting?.();
      });
      socket.on("data", (b: Uint8Array) => {
        this.buffer += new TextDecoder().decode(b);
        this.waiting?.();
      });
      socket.on("close", () => {
        this.closed = true;
        this.waiting?.();
      });
    });
  }

  private stale(): boolean {
    const now = Date.now();
    const maxIdle = this.config.time("smtpd_policy_service_max_idle") * 1000;
    const maxTtl = this.config.time("smtpd_policy_service_max_ttl") * 1000;
    const limit = this.config.int("smtpd_policy_service_request_limit");
    return now - this.lastUsed > maxIdle || now - this.opened > maxTtl ||
      (limit > 0 && this.requests >= limit);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.closed = true;
  }

  /** Sends one request and returns the action text. */
  async query(attrs: Record<string, string>, timeoutMs: number): Promise<string> {
    if (!this.closed && this.stale()) this.close();
    if (this.closed) await this.connect();
    let body = "";
    for (const [k, v] of Object.entries(attrs)) body += `${k}=${v}\n`;
    this.socket!.write(body + "\n");
    this.requests++;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end >= 0) {
        const reply = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        this.lastUsed = Date.now();
        for (const line of reply.split("\n")) {
          if (line.startsWith("action=")) return line.slice(7);
        }
        throw new Error("missing action attribute");
      }
      if (this.closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timeout");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(t);
          this.waiting = undefined;
          resolve();
        };
      });
    }
  }
}

const connections = new Map<string, PolicyConnection>();

/**
 * Asks the policy server at `endpoint` and returns its action, or the
 * smtpd_policy_service_default_action after smtpd_policy_service_try_limit
 * failed attempts.
 */
export async function askPolicy(
  config: Config,
  endpoint: string,
  attrs: Record<string, string>,
): Promise<string> {
  let conn = connections.get(endpoint);
  if (!conn) connections.set(endpoint, conn = new PolicyConnection(endpoint, config));
  const tries = Math.max(1, config.int("smtpd_policy_service_try_limit"));
  const timeout = config.time("smtpd_policy_service_timeout") * 1000;
  for (let i = 0; i < tries; i++) {
    try {
      return await conn.query(attrs, timeout);
    } catch (err) {
      conn.close();
      warn(`problem talking to server ${endpoint}: ${(err as Error).message}`);
      if (i + 1 < tries) {
        await new Promise((r) =>
          setTimeout(r, config.time("smtpd_policy_service_retry_delay") * 1000)
        );
      }
    }
  }
  return config.get("smtpd_policy_service_default_action");
}

/** Closes every policy connection (process exit, tests). */
export function closePolicyConnections(): void {
  for (const c of connections.values()) c.close();
  connections.clear();
}
