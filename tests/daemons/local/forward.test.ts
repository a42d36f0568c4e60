// ~/.forward files: forward_path with $home and extensions, chains from
// user to user, a user listing themselves, empty files, commands and files
// from a .forward, and loops broken by Delivered-To.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { localFixture, opts, statuses } from "./fixture.ts";

Deno.test(".forward files chain from user to user", opts, async () => {
  const f = await localFixture();
  try {
    Deno.writeTextFileSync(`${f.home("alice")}/.forward`, "bob\n");
    Deno.writeTextFileSync(`${f.home("bob")}/.forward`, "# forwarded on\ncarol@example.com\n");
    const { id, log } = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(log), [
      "carol@example.com, orig_to=<alice@example.com> 2.0.0 sent (delivered to mailbox)",
    ]);
    assertEquals(f.remaining(id), []);
    // frozen_delivered_to: the Delivered-To address is the one the delivery started with.
    assertStringIncludes(
      Deno.readTextFileSync(`${f.spool}/carol`),
      "\nDelivered-To: alice@example.com\n",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "a user listed in their own .forward keeps a copy; an empty .forward is ignored",
  opts,
  async () => {
    const f = await localFixture();
    try {
      Deno.writeTextFileSync(`${f.home("alice")}/.forward`, "\\alice, bob\n");
      Deno.writeTextFileSync(`${f.home("bob")}/.forward`, "");
      const { log } = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(log), [
        "alice@example.com 2.0.0 sent (delivered to mailbox)",
        "bob@example.com, orig_to=<alice@example.com> 2.0.0 sent (delivered to mailbox)",
      ]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(".forward+extension is tried before .forward", opts, async () => {
  const f = await localFixture({ recipient_delimiter: "+" });
  try {
    Deno.writeTextFileSync(`${f.home("alice")}/.forward+lists`, "carol\n");
    Deno.writeTextFileSync(`${f.home("alice")}/.forward`, "bob\n");
    const ext = await f.deliver(["alice+lists@example.com"]);
    assertEquals(statuses(ext.log).map((s) => s.split(",")[0]), ["carol@example.com"]);
    const plain = await f.deliver(["alice+other@example.com"]);
    assertEquals(statuses(plain.log).map((s) => s.split(",")[0]), ["bob@example.com"]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a .forward may pipe to a command and append to a file", opts, async () => {
  const f = await localFixture();
  try {
    Deno.writeTextFileSync(
      `${f.home("alice")}/.forward`,
      `"|cat > ${f.dir}/fwd.cmd", ${f.home("alice")}/saved\n`,
    );
    const { log } = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(log), [
      `alice@example.com 2.0.0 sent (delivered to command: cat > ${f.dir}/fwd.cmd)`,
      `alice@example.com 2.0.0 sent (delivered to file: ${f.home("alice")}/saved)`,
    ]);
    assertStringIncludes(
      Deno.readTextFileSync(`${f.dir}/fwd.cmd`),
      "\nX-Original-To: alice@example.com\n",
    );
    f.env.settings.allowMailToCommands = new Set(["alias"]);
    const restricted = await f.deliver(["alice@example.com"]);
    assertEquals(
      statuses(restricted.log)[0],
      "alice@example.com 5.7.1 bounced (mail to command is restricted)",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "forward_path expands $user, $home and ${extension?...} with the filter",
  opts,
  async () => {
    const f = await localFixture({
      recipient_delimiter: "+",
      forward_path: `${"$"}{extension?${"$"}home/.fwd-${"$"}extension}, /nonexistent/${"$"}user`,
    });
    try {
      Deno.writeTextFileSync(`${f.home("bob")}/.fwd-a_b`, "carol\n");
      const { log } = await f.deliver(["bob+a;b@example.com"]);
      assertEquals(statuses(log).map((s) => s.split(",")[0]), ["carol@example.com"]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "mutually forwarding users are stopped by the Delivered-To loop check",
  opts,
  async () => {
    const f = await localFixture({ frozen_delivered_to: "no" });
    try {
      Deno.writeTextFileSync(`${f.home("alice")}/.forward`, "bob\n");
      const { log } = await f.deliver(["alice@example.com"], {
        body: ["Delivered-To: bob@example.com", "Subject: again", "", "x"],
      });
      assertEquals(statuses(log), [
        "bob@example.com, orig_to=<alice@example.com> 5.4.6 bounced (mail forwarding loop for bob@example.com)",
      ]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "a .forward keeping a copy, piping and forwarding logs as the reference does",
  opts,
  async () => {
    const f = await localFixture({ recipient_delimiter: "+", forward_path: "FWD/$user" });
    f.env.settings.forwardPath = `${f.dir}/fwd/$user`;
    try {
      Deno.mkdirSync(`${f.dir}/fwd`);
      Deno.writeTextFileSync(
        `${f.dir}/fwd/alice`,
        '\\alice, friend@remote.test, "|cat > /dev/null"\n',
      );
      const plain = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(plain.log), [
        "alice@example.com 2.0.0 sent (delivered to mailbox)",
        "alice@example.com 2.0.0 sent (delivered to command: cat > /dev/null)",
        "alice@example.com 2.0.0 sent (forwarded as FWD1)",
      ]);
      const ext = await f.deliver(["alice+ext@example.com"]);
      assertEquals(statuses(ext.log), [
        "alice@example.com, orig_to=<alice+ext@example.com> 2.0.0 sent (delivered to mailbox)",
        "alice+ext@example.com 2.0.0 sent (delivered to command: cat > /dev/null)",
        "alice+ext@example.com 2.0.0 sent (forwarded as FWD2)",
      ]);
      f.env.settings.luserRelay = "alice+$local";
      const relayed = await f.deliver(["unknownx@example.com"]);
      assertEquals(statuses(relayed.log), [
        "alice@example.com, orig_to=<unknownx@example.com> 2.0.0 sent (delivered to mailbox)",
        "alice+unknownx@example.com, orig_to=<unknownx@example.com> 2.0.0 sent (delivered to command: cat > /dev/null)",
        "unknownx@example.com 2.0.0 sent (forwarded as FWD3)",
      ]);
      assertEquals(f.forwarded[2].filter((r) => /^[SOR] /.test(r)), [
        "S sender@example.org",
        "O unknownx@example.com",
        "R friend@remote.test",
      ]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("a world-writable .forward is ignored with a warning", opts, async () => {
  const f = await localFixture();
  try {
    const path = `${f.home("alice")}/.forward`;
    Deno.writeTextFileSync(path, "bob\n");
    Deno.chmodSync(path, 0o666);
    const { log } = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(log), ["alice@example.com 2.0.0 sent (delivered to mailbox)"]);
    assertStringIncludes(log.join("\n"), `warning: file ${path} is world writable`);
  } finally {
    await f.cleanup();
  }
});

Deno.test({
  name: "a .forward owned by another user is ignored with a warning",
  ignore: Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const f = await localFixture();
    try {
      const path = `${f.home("alice")}/.forward`;
      Deno.writeTextFileSync(path, "bob\n");
      Deno.chownSync(path, 65534, null);
      const { log } = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(log), ["alice@example.com 2.0.0 sent (delivered to mailbox)"]);
      assertStringIncludes(log.join("\n"), `warning: file ${path} has bad owner uid 65534`);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test(
  "an extension with a slash is dropped: no .forward+ file is looked for",
  opts,
  async () => {
    const f = await localFixture({ recipient_delimiter: "+" });
    try {
      Deno.writeTextFileSync(`${f.home("alice")}/.forward`, "bob\n");
      const { log } = await f.deliver(["alice+../x@example.com"]);
      assertStringIncludes(log.join("\n"), "address with illegal extension: alice+../x");
      assertEquals(statuses(log).map((s) => s.split(",")[0]), ["bob@example.com"]);
    } finally {
      await f.cleanup();
    }
  },
);
