// Bad master.cf input and a hostile environment: each gets Postfix's
// diagnostic, and the other services run where Postfix would run them.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { alive, ask, freePort, Instance, waitFor } from "./instance.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "master.cf with an unknown service type is refused and nothing starts",
  opts,
  async () => {
    const inst = await Instance.create("echo unix - - n - - echo\nbad  foo  - - n - - echo\n");
    try {
      const start = await inst.postfix("start");
      assertEquals(start.code, 1);
      // Postfix's master's wording, passed on by postfix start.
      assertStringIncludes(
        start.stderr,
        `postfix/master: fatal: ${inst.dir}/master.cf: line 2: bad transport type: foo`,
      );
      assertStringIncludes(
        start.stderr,
        "postfix/postfix-script: fatal: mail system startup failed",
      );
      const status = await inst.postfix("status");
      assertEquals(status.code, 1);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test("master.cf with a wrong field count is refused by the master too", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\nbad  unix  - - n -\n");
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 1);
    assertStringIncludes(
      start.stderr,
      `fatal: ${inst.dir}/master.cf: line 2: missing "max_proc" field`,
    );
    // The master run directly says the same and exits.
    const master = await inst.program("master", ["-c", inst.dir]);
    assertEquals(master.code, 1);
    assertMatch(
      inst.readLog(),
      /master\[\d+\]: fatal: .*master\.cf: line 2: missing "max_proc" field/,
    );
    // postfix check reads master.cf too.
    const check = await inst.postfix("check");
    assertEquals(check.code, 1);
    assertStringIncludes(check.stderr, `line 2: missing "max_proc" field`);
  } finally {
    await inst.destroy();
  }
});

Deno.test("a command that does not exist is throttled; the other services run", opts, async () => {
  const inst = await Instance.create(
    "echo unix - - n - - echo\nghost unix - - n - - nosuchprogram\n",
  );
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const pending = ask({ path: `${inst.queue}/private/ghost` }, "x", 3000);
    assert(
      await waitFor(() => /nosuchprogram: bad command startup -- throttling/.test(inst.readLog())),
    );
    await pending;
    assertMatch(inst.readLog(), /warning: process \S+\/nosuchprogram pid \d+ exit status 1/);
    assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "ok"), /^\d+ echo ok$/);
  } finally {
    await inst.destroy();
  }
});

Deno.test(
  "daemon_directory/COMMAND runs installed commands; a missing one gets exec's error",
  opts,
  async () => {
    const inst = await Instance.create(
      "echo unix - - n - - echo\nghost unix - - n - - nosuchprogram\n",
      "", // the launcher is removed below: daemon_directory mode
    );
    try {
      const libexec = `${inst.dir}/libexec`;
      await Deno.mkdir(libexec);
      await Deno.chmod(libexec, 0o755);
      // What install.sh makes: a launcher per program name (here a script).
      const script = `#!/bin/sh\nexec ${Deno.execPath()} run -A --unstable-ffi --unstable-net ` +
        `${projectRoot}tests/fixtures/daemons/launch.ts "$(basename "$0")" "$@"\n`;
      await Deno.writeTextFile(`${libexec}/echo`, script, { mode: 0o755 });
      await Deno.writeTextFile(`${libexec}/master`, script, { mode: 0o755 });
      const main = (await Deno.readTextFile(`${inst.dir}/main.cf`))
        .replace(/^posthorn_launcher = .*$/m, `daemon_directory = ${libexec}`);
      await Deno.writeTextFile(`${inst.dir}/main.cf`, main);
      assertEquals((await inst.postfix("start")).code, 0);
      const pending = ask({ path: `${inst.queue}/private/ghost` }, "x", 3000);
      assert(
        await waitFor(() =>
          /nosuchprogram: bad command startup -- throttling/.test(inst.readLog())
        ),
      );
      await pending;
      assertStringIncludes(
        inst.readLog(),
        `fatal: master_spawn: exec ${libexec}/nosuchprogram: No such file or directory`,
      );
      assertMatch(await ask({ path: `${inst.queue}/private/echo` }, "ok"), /^\d+ echo ok$/);
    } finally {
      await inst.destroy();
    }
  },
);

Deno.test("a port already in use stops the master with Postfix's bind error", opts, async () => {
  const port = freePort();
  const holder = Deno.listen({ hostname: "127.0.0.1", port });
  const inst = await Instance.create(`echo unix - - n - - echo\n${port} inet n - n - - echo\n`);
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 1);
    assertStringIncludes(
      start.stderr,
      `fatal: bind 127.0.0.1 port ${port}: Address already in use`,
    );
    assertStringIncludes(start.stderr, "fatal: mail system startup failed");
    assertMatch(inst.readLog(), new RegExp(`master\\[\\d+\\]: fatal: bind 127.0.0.1 port ${port}`));
    // Nothing is left running, and the lock is free for the next start.
    const status = await inst.postfix("status");
    assertEquals(status.code, 1);
  } finally {
    holder.close();
    await inst.destroy();
  }
});

Deno.test("postfix: unknown command and missing command get Postfix's messages", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    const unknown = await inst.postfix("frobnicate");
    assertEquals(unknown.code, 1);
    assertStringIncludes(
      unknown.stderr,
      "postfix/postfix-script: fatal: unknown command: 'frobnicate'. Usage: postfix start (or stop, reload, abort, flush, check, status, set-permissions, upgrade-configuration, logrotate)",
    );
    const none = await inst.program("postfix", []);
    assertEquals(none.code, 1);
    assertStringIncludes(none.stderr, "usage: postfix [-c config_dir] [-Dv] command");
    const flush = await inst.postfix("flush");
    assertEquals(flush.code, 1);
    assertStringIncludes(flush.stderr, `fatal: no Postfix queue directory ${inst.queue}!`);
    const check = await inst.postfix("check");
    assertEquals(check.code, 0, check.stderr);
    assert(Deno.statSync(`${inst.queue}/maildrop`).isDirectory);
  } finally {
    await inst.destroy();
  }
});

Deno.test("postfix flush without a queue manager says so", opts, async () => {
  const inst = await Instance.create("echo unix - - n - - echo\n");
  try {
    assertEquals((await inst.postfix("start")).code, 0);
    const master = inst.masterPid();
    const flush = await inst.postfix("flush");
    assertEquals(flush.code, 1);
    assertStringIncludes(flush.stderr, "cannot flush the queue: no queue manager");
    assert(alive(master));
  } finally {
    await inst.destroy();
  }
});

Deno.test({
  name: "as root, a mail_owner that does not exist is refused",
  ignore: Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const inst = await Instance.create(
      "echo unix - - n - - echo\n",
      "mail_owner = no-such-user-xyz",
    );
    try {
      const start = await inst.postfix("start");
      assertEquals(start.code, 1);
      assertStringIncludes(
        start.stderr,
        `fatal: file ${inst.dir}/main.cf: parameter mail_owner: unknown user name value: no-such-user-xyz`,
      );
    } finally {
      await inst.destroy();
    }
  },
});

Deno.test(
  "postfix post-install creates the queue tree; set-permissions repairs modes; check warns",
  opts,
  async () => {
    const inst = await Instance.create("echo unix - - n - - echo\n");
    try {
      assertEquals((await inst.postfix("post-install", "create-missing")).code, 0);
      for (
        const name of ["active", "deferred", "incoming", "maildrop", "pid", "private", "public"]
      ) {
        assert(Deno.statSync(`${inst.queue}/${name}`).isDirectory, name);
      }
      assertEquals(Deno.statSync(`${inst.queue}/private`).mode! & 0o7777, 0o700);
      await Deno.chmod(`${inst.queue}/private`, 0o777);
      const check = await inst.postfix("check");
      assertEquals(check.code, 0);
      assertStringIncludes(check.stderr, `warning: group or other writable: ${inst.queue}/private`);
      assertEquals((await inst.postfix("set-permissions")).code, 0);
      assertEquals(Deno.statSync(`${inst.queue}/private`).mode! & 0o7777, 0o700);
      const clean = await inst.postfix("check");
      assertEquals(clean.stderr.includes("warning"), false, clean.stderr);
    } finally {
      await inst.destroy();
    }
  },
);
