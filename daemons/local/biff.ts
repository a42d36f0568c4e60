// The biff notification local(8) sends after a mailbox delivery (biff =
// yes): one UDP datagram "user@offset" to the comsat service on this host
// (localhost, port 512), naming where the new message starts in the
// mailbox. Nobody listening is no error.

/** Where notifications go (tests use a port of their own). */
export interface BiffTarget {
  hostname: string;
  port: number;
}

/** The comsat service: localhost's biff port. */
export const comsat: BiffTarget = { hostname: "127.0.0.1", port: 512 };

let socket: Deno.DatagramConn | undefined;

/** Sends "user@offset"; failures are ignored, as a lost biff datagram is. */
export async function notifyBiff(user: string, offset: number, target = comsat): Promise<void> {
  try {
    socket ??= Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    await socket.send(new TextEncoder().encode(`${user}@${offset}`), {
      transport: "udp",
      hostname: target.hostname,
      port: target.port,
    });
  } catch {
    // No comsat, or no UDP here: mail is delivered all the same.
  }
}

/** The size of a file, or 0 when it does not exist yet (where the next message will start). */
export function mailboxSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}
