// The master on a temporary instance, with the test-only services of
// tests/fixtures/daemons: services answer at Postfix's addresses, start on
// demand and exit when idle, are restarted and throttled, follow a reload,
// and stop without leaving a process behind.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import {
  alive,
  ask,
  descendants,
  freePort,
  Instance,
  procUid,
  serviceProcs,
  testUser,
  waitFor,
} from "./instance.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("master: each configured service answers at Postfix's address", opts, async () => {
  const port = freePort();
  const inst = await Instance.create(
    [
      "echo      unix  -       -       n       -       -       echo",
      "pubecho   unix  n       -       n       -       -       echo",
      `${port}   inet  n       -       n       -       -       echo`,
      "  -o syslog_name=postfix/submission",
      "tick      unix  n       -       n       1       1       tick",
      "ftick     fifo  n       -       n       1       1       tick",
      "",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    assertStringIncludes(start.stderr, "postfix/postfix-script: starting the Postfix mail system");
    assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "hello"), /^\d+ echo hello$/);
    assertMatch(await ask({ path: `${inst.queue}/public/pubecho` }, "hi"), /^\d+ pubecho hi$/);
    // The -o override reaches the daemon's configuration.
    assertMatch(
      await ask({ port }, "param"),
      new RegExp(`^\\d+ ${port} param postfix/submission$`),
    );
    // Wake-up timers trigger both the unix and the fifo trigger service.
    const ticks = `${inst.dir}/data/ticks`;
    const seen = await waitFor(() => {
      try {
        return Deno.readTextFileSync(ticks).split("\n").filter((l) => / W$/.test(l)).length >= 2;
      } catch {
        return false;
      }
    });
    assert(seen, "wake-up triggers were not received");
    assertMatch(
      inst.readLog(),
      /postfix\/master\[\d+\]: daemon started -- version [\d.]+, configuration /,
    );
    const status = await inst.postfix("status");
    assertEquals(status.code, 0);
    assertStringIncludes(
      status.stderr,
      `the Postfix mail system is running: PID: ${inst.masterPid()}`,
    );
  } finally {
    await inst.destroy();
  }
});

Deno.test(
  "master: an on-demand service starts on first use and exits when idle",
  opts,
  async () => {
    const inst = await Instance.create(
      "echo unix - - n - - echo\n",
      "max_idle = 2",
    );
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const master = inst.masterPid();
      assertEquals(serviceProcs(master, "echo").length, 0, "started before use");
      const reply = await ask({ path: `${inst.queue}/private/echo` }, "one");
      const pid = Number(reply.split(" ")[0]);
      assert(pid > 0, `no reply: ${reply}`);
      assertEquals(serviceProcs(master, "echo"), [pid]);
      // A second client reuses the idle process.
      assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "two"), new RegExp(`^${pid} `));
      assert(await waitFor(() => !alive(pid), 8000), "the idle process did not exit");
      assert(!/warning/.test(inst.readLog()), inst.readLog());
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test(
  "master: a killed daemon is restarted; one that keeps dying is throttled",
  opts,
  async () => {
    const inst = await Instance.create(
      "echo unix - - n - - echo\ncrash unix - - n - - crash\n",
    );
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const path = `${inst.queue}/private/echo`;
      const first = Number((await ask({ path }, "a")).split(" ")[0]);
      Deno.kill(first, "SIGKILL");
      assert(await waitFor(() => inst.readLog().includes(`pid ${first} killed by signal 9`)));
      const second = Number((await ask({ path }, "b")).split(" ")[0]);
      assert(second > 0 && second !== first, `not restarted: ${first} ${second}`);
      // The crashing service: its client waits, the master throttles and retries.
      const pending = ask({ path: `${inst.queue}/private/crash` }, "x", 3000);
      assert(await waitFor(() => /crash: bad command startup -- throttling/.test(inst.readLog())));
      await pending;
      const log = inst.readLog();
      assertMatch(log, /warning: process \S+\/crash pid \d+ exit status 1/);
      assertMatch(log, /postfix\/crash\[\d+\]: fatal: crash test service/);
      // The other service is unaffected.
      assertMatch(await ask({ path }, "c"), /^\d+ echo c$/);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test("master: reload applies a master.cf change and keeps the rest", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\nkeep unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const keepPid = Number((await ask({ path: `${inst.queue}/private/keep` }, "k")).split(" ")[0]);
    const echoPid = Number((await ask({ path: `${inst.queue}/private/echo` }, "e")).split(" ")[0]);
    await Deno.writeTextFile(
      `${inst.dir}/master.cf`,
      "echo unix - - n - - echo -o echo_greeting=changed\nkeep unix - - n - - echo\n" +
        "added unix - - n - - echo\n",
    );
    const reload = await inst.postfix("reload");
    assertEquals(reload.code, 0, reload.stderr);
    assertStringIncludes(reload.stderr, "refreshing the Postfix mail system");
    assert(await waitFor(() => /master\[\d+\]: reload -- version/.test(inst.readLog())));
    assertMatch(await ask({ path: `${inst.queue}/private/added` }, "n"), /^\d+ added n$/);
    // Until the old process has seen its SIGHUP it may still take a client.
    assert(await waitFor(() => !alive(echoPid)), "the changed service's process was kept");
    assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "param"), /param changed$/);
    assert(alive(keepPid), "the unchanged service's process was stopped");
    assertMatch(await ask({ path: `${inst.queue}/private/keep` }, "k"), new RegExp(`^${keepPid} `));
  } finally {
    await inst.destroy();
  }
});

Deno.test("master: stop leaves no process behind", opts, async () => {
  const port = freePort();
  const inst = await Instance.create(`echo unix - - n - - echo\n${port} inet n - n - - echo\n`);
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const master = inst.masterPid();
    await ask({ path: `${inst.queue}/private/echo` }, "x");
    await ask({ port }, "y");
    const children = descendants(master);
    assert(children.length >= 2, `children: ${children}`);
    const stop = await inst.postfix("stop");
    assertEquals(stop.code, 0, stop.stderr);
    assertStringIncludes(stop.stderr, "postfix/postfix-script: stopping the Postfix mail system");
    assert(!alive(master), "master still running");
    assert(await waitFor(() => children.every((p) => !alive(p)), 5000), "children left");
    assertMatch(inst.readLog(), /master\[\d+\]: terminating on signal 15/);
    const again = await inst.postfix("stop");
    assertEquals(again.code, 1);
    assertStringIncludes(again.stderr, "fatal: the Postfix mail system is not running");
    const status = await inst.postfix("status");
    assertEquals(status.code, 1);
    assertStringIncludes(status.stderr, "the Postfix mail system is not running");
  } finally {
    await inst.destroy();
  }
});

Deno.test("master: a second master on the same queue is refused", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const second = await inst.program("master", ["-c", inst.dir]);
    assertEquals(second.code, 1);
    assertStringIncludes(
      second.stderr + inst.readLog(),
      "fatal: open lock file pid/master.pid: unable to set exclusive lock: Resource temporarily unavailable",
    );
    const start = await inst.postfix("start");
    assertEquals(start.code, 1);
    assertStringIncludes(start.stderr, "fatal: the Postfix mail system is already running");
    assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "still"), /echo still$/);
  } finally {
    await inst.destroy();
  }
});

Deno.test({
  name: "master: as root, daemons run as mail_owner",
  ignore: Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const port = freePort();
    const inst = await Instance.create(`echo unix - - n - - echo\n${port} inet n - n - - echo\n`);
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const pid = Number((await ask({ port }, "who")).split(" ")[0]);
      const uid = Number(new TextDecoder().decode(
        new Deno.Command("id", { args: ["-u", testUser] }).outputSync().stdout,
      ));
      assertEquals(procUid(pid), uid);
      assertEquals(procUid(inst.masterPid()), 0);
      const st = Deno.statSync(`${inst.queue}/private`);
      assertEquals(st.uid, uid);
    } finally {
      await inst.destroy();
    }
  },
});

Deno.test({
  name: "master: as root, a mail_owner that is root is refused",
  ignore: Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const inst = await Instance.create("echo unix - - n - - echo\n", "mail_owner = root");
    try {
      const start = await inst.postfix("start");
      assertEquals(start.code, 1);
      assertStringIncludes(start.stderr, "parameter mail_owner: user root has privileged user ID");
    } finally {
      await inst.destroy();
    }
  },
});

Deno.test("master: a main.cf change applies to every service at reload", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const path = `${inst.queue}/private/echo`;
    const before = await ask({ path }, "param");
    assertMatch(before, / param postfix$/);
    await Deno.writeTextFile(`${inst.dir}/main.cf`, "echo_greeting = from-main-cf\n", {
      append: true,
    });
    assertEquals((await inst.postfix("reload")).code, 0);
    assert(await waitFor(() => /reload -- version/.test(inst.readLog())));
    assert(await waitFor(() => !alive(Number(before.split(" ")[0]))));
    assertMatch(await ask({ path }, "param"), / param from-main-cf$/);
  } finally {
    await inst.destroy();
  }
});

Deno.test("master -t tells whether a master runs on the queue", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    assertEquals((await inst.program("master", ["-c", inst.dir, "-t"])).code, 0);
    assertEquals((await inst.postfix("start")).code, 0);
    assertEquals((await inst.program("master", ["-c", inst.dir, "-t"])).code, 1);
  } finally {
    await inst.destroy();
  }
});

Deno.test(
  "master: daemons exit when the master is killed; a new master starts on the queue",
  opts,
  async () => {
    const inst = await Instance.create("echo unix - - n - - echo\n");
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const master = inst.masterPid();
      const child = Number((await ask({ path: `${inst.queue}/private/echo` }, "x")).split(" ")[0]);
      Deno.kill(master, "SIGKILL");
      assert(
        await waitFor(() => !alive(master) && !alive(child), 8000),
        "a daemon outlived its master",
      );
      const again = await inst.postfix("start");
      assertEquals(again.code, 0, again.stderr);
      assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "y"), /echo y$/);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test(
  "master: a client in progress finishes when reload changes its service",
  opts,
  async () => {
    const inst = await Instance.create("echo unix - - n - - echo\n");
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const path = `${inst.queue}/private/echo`;
      const slow = ask({ path }, "sleep 2000");
      await new Promise((r) => setTimeout(r, 500));
      await Deno.writeTextFile(
        `${inst.dir}/master.cf`,
        "echo unix - - n - - echo -o echo_greeting=new\n",
      );
      assertEquals((await inst.postfix("reload")).code, 0);
      assertMatch(await ask({ path }, "param"), / param new$/);
      assertMatch(await slow, / echo sleep 2000$/);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test(
  "master: a process taking its last client (max_use) hands over to a loaded spare",
  opts,
  async () => {
    const inst = await Instance.create("echo unix - - n - - echo\n", "max_use = 3");
    try {
      assertEquals((await inst.postfix("start")).code, 0);
      const path = `${inst.queue}/private/echo`;
      // A pause after each client: one arriving before the process reports
      // itself free again would make the master start another process.
      const pidOf = async (text: string) => {
        const pid = Number((await ask({ path }, text)).split(" ")[0]);
        await new Promise((r) => setTimeout(r, 300));
        return pid;
      };
      const first = [await pidOf("a"), await pidOf("b"), await pidOf("c")];
      assert(first.every((p) => p === first[0]), `one process for max_use clients: ${first}`);
      // The retiring process made the master load a spare, which waits unused.
      const master = inst.masterPid();
      let spare = 0;
      assert(
        await waitFor(() => {
          const procs = serviceProcs(master, "echo").filter((p) => p !== first[0]);
          spare = procs[0] ?? 0;
          return procs.length === 1 && !alive(first[0]);
        }),
        "no spare was loaded",
      );
      // Time to load: a spare still loading is not woken (a fresh process is started instead).
      await new Promise((r) => setTimeout(r, 2000));
      // The next client is served by that spare. (Later ones may meet a fresh
      // process: a client arriving before the busy one reports itself free
      // makes the master start one, as Postfix's does.)
      assertEquals(await pidOf("d"), spare);
      await pidOf("e");
      await pidOf("f");
      // Another spare is loaded behind the second retiring process.
      assert(
        await waitFor(() => serviceProcs(master, "echo").some((p) => p !== spare && alive(p))),
        "no spare behind the second process",
      );
      assertEquals(inst.readLog().match(/warning/g), null);
    } finally {
      await inst.destroy();
    }
  },
);
