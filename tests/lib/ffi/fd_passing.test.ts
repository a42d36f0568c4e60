// Regression test for the path the master depends on (Deno 2.9 and later):
// sockets created through FFI to libc, passed to a child in node:child_process
// stdio slots above 2, and served there with node:net listen({ fd }).

import { spawn } from "node:child_process";
import * as net from "node:net";
import { assertEquals, assertStringIncludes } from "../../assert.ts";
import {
  closeFd,
  isLocked,
  LibcError,
  listenInet,
  listenUnix,
  localPort,
  lockFile,
  makePipe,
  parseIpv6,
  pollAsync,
  POLLIN,
  readFd,
  writeFd,
} from "../../../lib/ffi/libc.ts";

const child = `
import * as net from "node:net";
for (const fd of [6, 7]) {
  net.createServer((c) => c.on("data", (d) => c.end("fd" + fd + " " + d))).listen({ fd });
}
`;

function request(opts: net.NetConnectOpts): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts, () => s.write("ping"));
    let text = "";
    s.on("data", (d) => text += d);
    s.on("end", () => resolve(text));
    s.on("error", reject);
    setTimeout(() => reject(new Error("timeout")), 10_000);
  });
}

Deno.test("libc sockets passed in spawn stdio slots are served with node:net listen({ fd })", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir();
  const unixFd = listenUnix(`${dir}/sock`, 16);
  const tcpFd = listenInet("127.0.0.1", 0, 16);
  const port = localPort(tcpFd);
  await Deno.writeTextFile(`${dir}/child.ts`, child);
  const proc = spawn(Deno.execPath(), ["run", "-A", `${dir}/child.ts`], {
    stdio: ["ignore", "inherit", "inherit", "ignore", "ignore", "ignore", unixFd, tcpFd],
  });
  const exited = new Promise((r) => proc.on("exit", r));
  try {
    assertEquals(await request({ path: `${dir}/sock` }), "fd6 ping");
    assertEquals(await request({ host: "127.0.0.1", port }), "fd7 ping");
  } finally {
    proc.kill("SIGKILL");
    await exited;
    closeFd(unixFd);
    closeFd(tcpFd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listenInet() on a port in use fails with EADDRINUSE's text", () => {
  const fd = listenInet("127.0.0.1", 0, 4);
  try {
    listenInet("127.0.0.1", localPort(fd), 4);
    throw new Error("expected a failure");
  } catch (err) {
    if (!(err instanceof LibcError)) throw err;
    assertStringIncludes(err.message, "Address already in use");
  } finally {
    closeFd(fd);
  }
});

Deno.test("pollAsync() reports a readable pipe without blocking the event loop", async () => {
  const [r, w] = makePipe();
  let ticked = false;
  setTimeout(() => ticked = true, 10);
  const waiting = pollAsync([{ fd: r, events: POLLIN }], 2000);
  await new Promise((res) => setTimeout(res, 50));
  writeFd(w, new TextEncoder().encode("x"));
  assertEquals(await waiting, 1);
  assertEquals(ticked, true);
  const buf = new Uint8Array(8);
  assertEquals(readFd(r, buf), 1);
  assertEquals(readFd(r, buf), -1);
  closeFd(r);
  closeFd(w);
});

Deno.test("lockFile() excludes a second holder until closed", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lock`;
  assertEquals(isLocked(path), false);
  const fd = lockFile(path);
  // flock locks belong to the open file: a second open in this process conflicts too.
  assertEquals(isLocked(path), true);
  closeFd(fd);
  assertEquals(isLocked(path), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseIpv6() expands :: and an IPv4 tail", () => {
  assertEquals([...parseIpv6("::1")], [...new Uint8Array(15), 1]);
  assertEquals([...parseIpv6("::ffff:127.0.0.1")].slice(10), [255, 255, 127, 0, 0, 1]);
});

Deno.test(
  "a connection accepted through FFI is served as a node:net socket with its peer address",
  {
    sanitizeResources: false,
    sanitizeOps: false,
  },
  async () => {
    const { acceptFd, setNonblocking } = await import("../../../lib/ffi/libc.ts");
    const fd = listenInet("127.0.0.1", 0, 4);
    setNonblocking(fd, true);
    const port = localPort(fd);
    const served = (async () => {
      await pollAsync([{ fd, events: POLLIN }], 5000);
      const conn = new net.Socket({ fd: acceptFd(fd), readable: true, writable: true });
      conn.on("data", (d) => conn.end(`${d} from ${conn.remoteAddress}`));
    })();
    try {
      assertEquals(await request({ host: "127.0.0.1", port }), "ping from 127.0.0.1");
      await served;
    } finally {
      closeFd(fd);
    }
  },
);

Deno.test("sendFd() and recvFd() hand a descriptor over a unix socket", async () => {
  const { connectUnix, sendFd, recvFd, acceptFd, setNonblocking } = await import(
    "../../../lib/ffi/libc.ts"
  );
  const dir = await Deno.makeTempDir();
  const listener = listenUnix(`${dir}/pass`, 4);
  setNonblocking(listener, true);
  const [r, w] = makePipe();
  const out = connectUnix(`${dir}/pass`);
  await pollAsync([{ fd: listener, events: POLLIN }], 5000);
  const inc = acceptFd(listener);
  sendFd(out, w);
  await pollAsync([{ fd: inc, events: POLLIN }], 5000);
  const received = recvFd(inc);
  assertEquals(received >= 0 && received !== w, true);
  writeFd(received, new TextEncoder().encode("via passed fd"));
  const buf = new Uint8Array(32);
  assertEquals(new TextDecoder().decode(buf.subarray(0, readFd(r, buf))), "via passed fd");
  for (const fd of [listener, r, w, out, inc, received]) closeFd(fd);
  await Deno.remove(dir, { recursive: true });
});
