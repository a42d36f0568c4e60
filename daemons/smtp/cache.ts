// The connection cache seam (scache(8)): where the client asks for an open
// session to a server before connecting, and offers a finished session back
// instead of sending QUIT. Posthorn's scache service is a separate module;
// until the client is wired to it, no session is cached: every delivery
// opens a new connection and ends it with QUIT, which is Postfix's own
// behaviour with smtp_connection_cache_on_demand = no and no
// smtp_connection_cache_destinations.

import type { ServerAddress } from "./nexthop.ts";
import type { SmtpStream } from "./stream.ts";

/** An open, idle session to `server` from the connection cache, if one is there. */
export function cachedConnection(_server: ServerAddress): SmtpStream | undefined {
  return undefined;
}

/** Offers a finished session to the cache; false when the caller must QUIT and close it. */
export function offerConnection(_server: ServerAddress, _stream: SmtpStream): boolean {
  return false;
}
