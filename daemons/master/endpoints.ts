// Creating the listening endpoints of a service, as Postfix's master_listen
// does: unix sockets and fifos under private/ and public/ (owned by
// mail_owner when the master runs as root), TCP sockets with SO_REUSEADDR.
// The master creates them all itself, before any process drops privileges.

import {
  closeFd,
  LibcError,
  listenInet,
  listenUnix,
  openFifo,
  SOCK_DGRAM,
} from "../../lib/ffi/libc.ts";
import type { Credentials } from "../../lib/daemon/users.ts";
import type { Endpoint } from "./services.ts";

/** A socket the master could not create, with Postfix's wording. */
export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EndpointError";
  }
}

/** Opens every endpoint of a service; all or none (descriptors closed on failure). */
export function openEndpoints(
  endpoints: Endpoint[],
  backlog: number,
  owner?: Credentials,
): number[] {
  const fds: number[] = [];
  try {
    for (const endpoint of endpoints) fds.push(openEndpoint(endpoint, backlog, owner));
    return fds;
  } catch (err) {
    for (const fd of fds) closeFd(fd);
    throw err;
  }
}

function openEndpoint(endpoint: Endpoint, backlog: number, owner?: Credentials): number {
  if (endpoint.kind === "inet") {
    try {
      return listenInet(endpoint.host, endpoint.port, backlog);
    } catch (err) {
      const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
      // Postfix's inet_listen: "bind 127.0.0.1 port 25: Address already in use".
      throw new EndpointError(`bind ${host} port ${endpoint.port}: ${reason(err)}`);
    }
  }
  let fd: number;
  try {
    fd = endpoint.kind === "fifo"
      ? openFifo(endpoint.path, endpoint.mode)
      : listenUnix(endpoint.path, backlog, endpoint.kind === "dgram" ? SOCK_DGRAM : undefined);
  } catch (err) {
    const what = endpoint.kind === "fifo" ? "open" : "bind";
    throw new EndpointError(`${what} ${endpoint.path}: ${reason(err)}`);
  }
  try {
    Deno.chmodSync(endpoint.path, endpoint.mode);
    if (owner) Deno.chownSync(endpoint.path, owner.uid, owner.gid);
  } catch (err) {
    closeFd(fd);
    throw new EndpointError(`chmod ${endpoint.path}: ${reason(err)}`);
  }
  return fd;
}

function reason(err: unknown): string {
  if (err instanceof LibcError) return err.message.replace(/^\w+: /, "");
  return err instanceof Error ? err.message : String(err);
}

/** Removes a unix socket or fifo file a retired service leaves behind. */
export function removeEndpointFile(endpoint: Endpoint): void {
  if (endpoint.kind === "inet") return;
  try {
    Deno.removeSync(endpoint.path);
  } catch {
    // Already gone.
  }
}
