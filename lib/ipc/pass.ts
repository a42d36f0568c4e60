// The pass client: hands an accepted connection's descriptor to a `pass`
// service (master.cf type pass), as Postfix's postscreen hands a client to
// smtpd. The caller keeps (and should then close) its own copy.

import { closeFd, connectUnix, sendFd } from "../ffi/libc.ts";

/** Sends descriptor `fd` to the pass service listening at `path`. */
export function passConnection(path: string, fd: number): void {
  const sock = connectUnix(path);
  try {
    sendFd(sock, fd);
  } finally {
    closeFd(sock);
  }
}
