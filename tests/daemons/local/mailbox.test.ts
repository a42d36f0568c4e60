// local(8) mailbox deliveries: mbox in the spool and at home_mailbox,
// maildir, the headers Postfix prepends, unknown users, extensions, size
// limits, loops, mailbox_command and its environment.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { localFixture, opts, statuses } from "./fixture.ts";
import { statusFilter } from "../../../daemons/local/status_filter.ts";
import { openMap } from "../../../maps/registry.ts";

Deno.test(
  "a spool mbox gets the From_ line, Return-Path, X-Original-To and Delivered-To",
  opts,
  async () => {
    const f = await localFixture();
    try {
      const { id, reply, log } = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(log), ["alice@example.com 2.0.0 sent (delivered to mailbox)"]);
      assertMatch(log[0], /: to=<alice@example\.com>, relay=local, delay=[\d.]+, delays=/);
      assertEquals([...reply.results.values()], ["sent"]);
      assertEquals(f.remaining(id), []);
      const box = Deno.readTextFileSync(`${f.spool}/alice`);
      const lines = box.split("\n");
      assertMatch(
        lines[0],
        /^From sender@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/,
      );
      assertEquals(lines.slice(1), [
        "Return-Path: <sender@example.org>",
        "X-Original-To: alice@example.com",
        "Delivered-To: alice@example.com",
        "Subject: test",
        "From: sender@example.org",
        "",
        "Hello.",
        "",
        "",
      ]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("a second delivery appends and quotes From_ lines in the body", opts, async () => {
  const f = await localFixture();
  try {
    await f.deliver(["alice@example.com"]);
    await f.deliver(["alice@example.com"], {
      body: ["Subject: two", "", "From here on", "bye"],
    });
    const box = Deno.readTextFileSync(`${f.spool}/alice`);
    assertEquals(box.match(/^From sender@example\.org {2}/gm)?.length, 2);
    assertStringIncludes(box, "\n>From here on\nbye\n\n");
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "the null sender is MAILER-DAEMON in the From_ line and <> in Return-Path",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.deliver(["bob@example.com"], { sender: "" });
      const box = Deno.readTextFileSync(`${f.spool}/bob`);
      assertMatch(box, /^From MAILER-DAEMON {2}/);
      assertStringIncludes(box, "\nReturn-Path: <>\n");
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("home_mailbox ending in / delivers to a maildir at home", opts, async () => {
  const f = await localFixture({ home_mailbox: "Maildir/" });
  try {
    const { log } = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(log), ["alice@example.com 2.0.0 sent (delivered to maildir)"]);
    const files = [...Deno.readDirSync(`${f.home("alice")}/Maildir/new`)];
    assertEquals(files.length, 1);
    const text = Deno.readTextFileSync(`${f.home("alice")}/Maildir/new/${files[0].name}`);
    assert(
      text.startsWith("Return-Path: <sender@example.org>\nX-Original-To: alice@example.com\n"),
    );
    assert(!text.startsWith("From "));
  } finally {
    await f.cleanup();
  }
});

Deno.test("mail_spool_directory ending in / makes spool maildirs", opts, async () => {
  const f = await localFixture();
  const spool = `${f.dir}/maildirs/`;
  f.env.settings.mailSpoolDirectory = spool;
  try {
    const { log } = await f.deliver(["bob@example.com"]);
    assertEquals(statuses(log), ["bob@example.com 2.0.0 sent (delivered to maildir)"]);
    assertEquals([...Deno.readDirSync(`${spool}bob/new`)].length, 1);
  } finally {
    await f.cleanup();
  }
});

Deno.test("home_mailbox names an mbox file in the home directory", opts, async () => {
  const f = await localFixture({ home_mailbox: "Mailbox" });
  try {
    await f.deliver(["carol@example.com"]);
    assertStringIncludes(Deno.readTextFileSync(`${f.home("carol")}/Mailbox`), "\nHello.\n\n");
  } finally {
    await f.cleanup();
  }
});

Deno.test("an unknown user is bounced with 5.1.1 unknown user", opts, async () => {
  const f = await localFixture();
  try {
    const { id, reply, log } = await f.deliver(["Nosuch@example.com"]);
    assertEquals(statuses(log), [`Nosuch@example.com 5.1.1 bounced (unknown user: "nosuch")`]);
    assertEquals([...reply.results.values()], ["bounced"]);
    assertEquals(f.remaining(id), []);
    assertEquals(f.bounce.calls.map((c) => [c.log, c.rcpt, c.dsn?.status]), [
      ["bounce", "Nosuch@example.com", "5.1.1"],
    ]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("user+ext is delivered to user's mailbox with recipient_delimiter", opts, async () => {
  const f = await localFixture({ recipient_delimiter: "+" });
  try {
    const { log } = await f.deliver(["alice+lists@example.com"]);
    assertEquals(statuses(log), ["alice+lists@example.com 2.0.0 sent (delivered to mailbox)"]);
    assertStringIncludes(
      Deno.readTextFileSync(`${f.spool}/alice`),
      "Delivered-To: alice+lists@example.com\n",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "a Delivered-To header naming the recipient is a mail forwarding loop (5.4.6)",
  opts,
  async () => {
    const f = await localFixture();
    try {
      const { log } = await f.deliver(["alice@example.com"], {
        body: ["Delivered-To: ALICE@example.com", "Subject: loop", "", "x"],
      });
      assertEquals(statuses(log), [
        "alice@example.com 5.4.6 bounced (mail forwarding loop for alice@example.com)",
      ]);
      let exists = true;
      try {
        Deno.statSync(`${f.spool}/alice`);
      } catch {
        exists = false;
      }
      assert(!exists);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "mailbox_size_limit bounces with File too large and leaves the mailbox as it was",
  opts,
  async () => {
    const f = await localFixture({ mailbox_size_limit: "300" });
    try {
      await f.deliver(["alice@example.com"]);
      const before = Deno.readTextFileSync(`${f.spool}/alice`);
      const { log } = await f.deliver(["alice@example.com"], {
        body: ["Subject: big", "", "x".repeat(400)],
      });
      assertEquals(statuses(log), [
        `alice@example.com 5.2.2 bounced (cannot update mailbox ${f.spool}/alice for user alice. ` +
        "error writing message: File too large)",
      ]);
      assertEquals(Deno.readTextFileSync(`${f.spool}/alice`), before);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "a missing home directory fails a home_mailbox delivery; require_home_directory defers",
  opts,
  async () => {
    const f = await localFixture({ home_mailbox: "Mailbox" });
    try {
      Deno.removeSync(f.home("bob"), { recursive: true });
      const { log } = await f.deliver(["bob@example.com"]);
      assertEquals(statuses(log).length, 1);
      assertStringIncludes(
        statuses(log)[0],
        `(cannot update mailbox ${f.home("bob")}/Mailbox for user bob. `,
      );
      f.env.settings.requireHomeDirectory = true;
      const again = await f.deliver(["bob@example.com"]);
      assertEquals(statuses(again.log), [
        `bob@example.com 4.3.0 deferred (cannot access home directory ${
          f.home("bob")
        }: No such file or directory)`,
      ]);
      assertEquals([...again.reply.results.values()], ["deferred"]);
      assertEquals(f.remaining(again.id), ["bob@example.com"]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("mailbox_command gets the message and Postfix's environment", opts, async () => {
  const f = await localFixture({ recipient_delimiter: "+" });
  const out = `${f.dir}/env.out`;
  f.env.settings.mailboxCommand = `env > ${out}; cat >> ${out}`;
  try {
    const { log } = await f.deliver(["alice+tag@example.com"], {
      attrs: { client_address: "192.0.2.1", client_name: "client.example", protocol_name: "ESMTP" },
    });
    assertEquals(statuses(log), [
      `alice+tag@example.com 2.0.0 sent (delivered to command: env > ${out}; cat >> ${out})`,
    ]);
    const text = Deno.readTextFileSync(out);
    for (
      const line of [
        `HOME=${f.home("alice")}`,
        "USER=alice",
        "LOGNAME=alice",
        "SHELL=/bin/sh",
        "SENDER=sender@example.org",
        "RECIPIENT=alice+tag@example.com",
        "ORIGINAL_RECIPIENT=alice+tag@example.com",
        "LOCAL=alice+tag",
        "DOMAIN=example.com",
        "EXTENSION=tag",
        "CLIENT_ADDRESS=192.0.2.1",
        "CLIENT_HOSTNAME=client.example",
        "CLIENT_PROTOCOL=ESMTP",
        "PATH=/usr/bin:/bin",
      ]
    ) assertStringIncludes(text, `\n${line}\n`.slice(text.startsWith(line) ? 1 : 0));
    assertMatch(text, /\nFrom sender@example\.org {2}.*\nReturn-Path: <sender@example\.org>\n/);
    assertStringIncludes(text, "\nDelivered-To: alice+tag@example.com\nSubject: test\n");
  } finally {
    await f.cleanup();
  }
});

Deno.test("a failing mailbox_command is bounced or deferred by its exit status", opts, async () => {
  const f = await localFixture();
  try {
    f.env.settings.mailboxCommand = "exit 75";
    const soft = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(soft.log), ["alice@example.com 4.3.0 deferred (temporary failure)"]);
    f.env.settings.mailboxCommand = "printf '5.2.1 mailbox disabled'; exit 1";
    const hard = await f.deliver(["alice@example.com"]);
    assertEquals(statuses(hard.log), ["alice@example.com 5.2.1 bounced (mailbox disabled)"]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("biff = yes sends user@offset to comsat after a mailbox delivery", opts, async () => {
  const f = await localFixture();
  const listener = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  f.env.biffTarget = { hostname: "127.0.0.1", port };
  try {
    await f.deliver(["alice@example.com"]);
    const size = Deno.statSync(`${f.spool}/alice`).size;
    await f.deliver(["alice@example.com"]);
    const got: string[] = [];
    for (let i = 0; i < 2; i++) {
      const [data] = await listener.receive();
      got.push(new TextDecoder().decode(data));
    }
    assertEquals(got, ["alice@0", `alice@${size}`]);
  } finally {
    listener.close();
    await f.cleanup();
  }
});

Deno.test(
  "command_execution_directory is expanded; a missing one defers the command",
  opts,
  async () => {
    const f = await localFixture();
    f.env.settings.mailboxCommand = "pwd > ../pwd.out";
    f.env.settings.commandExecutionDirectory = "$home/work";
    try {
      Deno.mkdirSync(`${f.home("alice")}/work`);
      const ok = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(ok.log), [
        "alice@example.com 2.0.0 sent (delivered to command: pwd > ../pwd.out)",
      ]);
      assertEquals(
        Deno.readTextFileSync(`${f.home("alice")}/pwd.out`),
        `${f.home("alice")}/work\n`,
      );
      const missing = await f.deliver(["bob@example.com"]);
      assertEquals(statuses(missing.log).length, 1);
      assertStringIncludes(statuses(missing.log)[0], "bob@example.com 4.3.0 deferred (");
      assertEquals([...missing.reply.results.values()], ["deferred"]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test({
  name: "strict_mailbox_ownership defers delivery to a mailbox the recipient does not own",
  ignore: Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const f = await localFixture();
    try {
      Deno.writeTextFileSync(`${f.spool}/alice`, "");
      Deno.chownSync(`${f.spool}/alice`, 65534, null);
      const { log } = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(log), [
        `alice@example.com 4.2.0 deferred (cannot update mailbox ${f.spool}/alice for user alice. ` +
        `destination ${f.spool}/alice is not owned by recipient)`,
      ]);
      f.env.settings.strictMailboxOwnership = false;
      const again = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(again.log), ["alice@example.com 2.0.0 sent (delivered to mailbox)"]);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test(
  "local_delivery_status_filter rewrites a status (a hard bounce made soft)",
  opts,
  async () => {
    const f = await localFixture();
    try {
      Deno.writeTextFileSync(
        `${f.dir}/status.re`,
        "/^5\\.1\\.1 (unknown user.*)$/ 4.1.1 soft: $1\n/^2\\.0\\.0/ 5.0.0 no\n",
      );
      f.env.statusFilter = statusFilter(
        [openMap(`regexp:${f.dir}/status.re`)],
        "local_delivery_status_filter",
      );
      const { id, reply, log } = await f.deliver(["nosuch@example.com"]);
      assertEquals(statuses(log), [
        `nosuch@example.com 4.1.1 deferred (soft: unknown user: "nosuch")`,
      ]);
      assertEquals([...reply.results.values()], ["deferred"]);
      assertEquals(f.remaining(id), ["nosuch@example.com"]);
      // Success may not become failure: the result is ignored with a warning.
      const ok = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(ok.log), ["alice@example.com 2.0.0 sent (delivered to mailbox)"]);
      assertStringIncludes(ok.log.join("\n"), 'ignoring bad result "5.0.0 no"');
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "mailbox_command_maps gives a user a command of their own before mailbox_command",
  opts,
  async () => {
    const f = await localFixture();
    try {
      Deno.writeTextFileSync(`${f.dir}/commands.re`, `/^alice$/ cat > ${f.dir}/alice.out\n`);
      f.env.settings.mailboxCommandMaps = [`regexp:${f.dir}/commands.re`];
      f.env.settings.mailboxCommand = `cat > ${f.dir}/default.out`;
      const { log } = await f.deliver(["alice@example.com", "bob@example.com"]);
      assertEquals(statuses(log), [
        `alice@example.com 2.0.0 sent (delivered to command: cat > ${f.dir}/alice.out)`,
        `bob@example.com 2.0.0 sent (delivered to command: cat > ${f.dir}/default.out)`,
      ]);
    } finally {
      await f.cleanup();
    }
  },
);
