// The daemon runtime as the master drives it: the test plays the master,
// handing a listening socket and a status pipe to the echo test service in
// the descriptor slots, and reads its taken/available reports.

import { spawn } from "node:child_process";
import * as net from "node:net";
import { assert, assertEquals, assertMatch, assertThrows } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { closeFd, listenUnix, makePipe, pollAsync, POLLIN, readFd } from "../../../lib/ffi/libc.ts";
import { formatStatus, parseStatus } from "../../../lib/daemon/protocol.ts";
import { DaemonArgsError, parseDaemonArgs } from "../../../lib/daemon/args.ts";

const launcher = `${projectRoot}tests/fixtures/daemons/launch.ts`;
const opts = { sanitizeOps: false, sanitizeResources: false };

function ask(path: string, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ path }, () => s.write(line + "\n"));
    let text = "";
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on("data", (d) => {
      text += d;
      if (text.includes("\n")) s.end();
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(text.trim());
    });
    s.on("error", () => {});
  });
}

async function readStatus(fd: number, want: number): Promise<string[]> {
  const buf = new Uint8Array(256);
  let text = "";
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && parseStatus(text).length < want) {
    await pollAsync([{ fd, events: POLLIN }], 200);
    const n = readFd(fd, buf);
    if (n > 0) text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return parseStatus(text).map((m) => m.status);
}

/** Starts the echo service as the master would, with `mainCf` settings. */
async function startEcho(mainCf: string) {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/main.cf`, `maillog_file = ${dir}/log\n${mainCf}\n`);
  const listenFd = listenUnix(`${dir}/sock`, 16);
  const [statusR, statusW] = makePipe();
  const [lifeR, lifeW] = makePipe();
  const child = spawn(
    Deno.execPath(),
    ["run", "-A", "--unstable-ffi", "--unstable-net", launcher, "echo", "-n", "echo", "-t", "unix"],
    {
      stdio: ["ignore", "inherit", "inherit", "ignore", lifeR, statusW, listenFd],
      env: { ...Deno.env.toObject(), MAIL_CONFIG: dir },
    },
  );
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  closeFd(statusW);
  closeFd(lifeR);
  return {
    dir,
    child,
    exit,
    statusR,
    lifeW,
    cleanup: async () => {
      child.kill("SIGKILL");
      await exit;
      for (const fd of [listenFd, statusR, lifeW]) closeFd(fd);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("daemon runtime reports taken and available, and exits after max_use", opts, async () => {
  const echo = await startEcho("max_use = 2");
  try {
    const first = await ask(`${echo.dir}/sock`, "one");
    assertMatch(first, new RegExp(`^${echo.child.pid} echo one$`));
    assertEquals(await readStatus(echo.statusR, 2), ["taken", "available"]);
    await ask(`${echo.dir}/sock`, "two");
    assertEquals(await echo.exit, 0);
  } finally {
    await echo.cleanup();
  }
});

Deno.test("daemon runtime exits after max_idle seconds without a client", opts, async () => {
  const echo = await startEcho("max_idle = 1");
  try {
    assertEquals(await echo.exit, 0);
  } finally {
    await echo.cleanup();
  }
});

Deno.test("daemon runtime exits when the master's lifeline closes", opts, async () => {
  const echo = await startEcho("");
  try {
    await ask(`${echo.dir}/sock`, "hello");
    closeFd(echo.lifeW);
    assertEquals(await echo.exit, 0);
  } finally {
    await echo.cleanup();
  }
});

Deno.test("daemon runtime turns a handler's error into a logged fatal exit", opts, async () => {
  const echo = await startEcho("");
  try {
    await ask(`${echo.dir}/sock`, "crash");
    assertEquals(await echo.exit, 1);
    const log = await Deno.readTextFile(`${echo.dir}/log`);
    assertMatch(log, /postfix\/echo\[\d+\]: fatal: echo: unexpected error: Error: crash requested/);
  } finally {
    await echo.cleanup();
  }
});

Deno.test(
  "a daemon started on its own listens with -L and logs under syslog_name",
  opts,
  async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/main.cf`, `maillog_file = ${dir}/log\n`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-ffi",
        "--unstable-net",
        launcher,
        "echo",
        "-L",
        `unix:${dir}/sock`,
        "-o",
        "syslog_name=postfix/submission",
      ],
      env: { MAIL_CONFIG: dir },
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let reply = "";
      for (let i = 0; i < 100 && !reply; i++) {
        await new Promise((r) => setTimeout(r, 100));
        reply = await ask(`${dir}/sock`, "param").catch(() => "");
      }
      assertMatch(reply, /^\d+ echo param postfix\/submission$/);
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      assert(status.code === 0 || status.signal !== null);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("parseDaemonArgs() reads the master's arguments and -o settings", () => {
  const args = parseDaemonArgs(
    ["-n", "submission", "-t", "inet", "-u", "-o", "syslog_name=postfix/submission", "-v"],
    "smtpd",
  );
  assertEquals(args.service, "submission");
  assertEquals(args.type, "inet");
  assertEquals(args.unprivileged, true);
  assertEquals(args.verbose, 1);
  assertEquals(args.overrides, { syslog_name: "postfix/submission" });
  assertThrows(() => parseDaemonArgs(["-o", "novalue"], "x"), DaemonArgsError);
  assertThrows(() => parseDaemonArgs(["-Q"], "x"), DaemonArgsError);
});

Deno.test("status messages round-trip; malformed lines are skipped", () => {
  const text = formatStatus(42, 3, "taken") + "garbage\n" + formatStatus(42, 3, "available");
  assertEquals(parseStatus(text), [
    { pid: 42, generation: 3, status: "taken" },
    { pid: 42, generation: 3, status: "available" },
  ]);
});
