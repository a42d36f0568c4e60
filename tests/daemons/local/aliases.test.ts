// local(8) alias expansion: lists, /file and |command destinations,
// :include: files, owner- aliases, self references, duplicates, nesting
// loops, restrictions, command time limits, partial failures and the
// transports that take mail over (mailbox_transport, fallback_transport,
// luser_relay).

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { serveAgent } from "../../lib/deliver/agent_harness.ts";
import { DeliverFlag } from "../../../lib/deliver/request.ts";
import { localFixture, opts, statuses } from "./fixture.ts";

Deno.test("an alias list delivers to each member, logged with orig_to", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases("team: alice, bob\n");
    const { id, reply, log } = await f.deliver(["team@example.com"]);
    assertEquals(statuses(log), [
      "alice@example.com, orig_to=<team@example.com> 2.0.0 sent (delivered to mailbox)",
      "bob@example.com, orig_to=<team@example.com> 2.0.0 sent (delivered to mailbox)",
    ]);
    assertEquals([...reply.results.values()], ["sent"]);
    assertEquals(f.remaining(id), []);
    const box = Deno.readTextFileSync(`${f.spool}/bob`);
    // X-Original-To is the address as given; Delivered-To is frozen at it too.
    assertStringIncludes(
      box,
      "\nX-Original-To: team@example.com\nDelivered-To: team@example.com\n",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test("aliases deliver to /files and |commands", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases(`files: ${f.dir}/archive, "|cat > ${f.dir}/cmd.out", ${f.dir}/md/\n`);
    const { log } = await f.deliver(["files@example.com"]);
    assertEquals(statuses(log), [
      `files@example.com 2.0.0 sent (delivered to file: ${f.dir}/archive)`,
      `files@example.com 2.0.0 sent (delivered to command: cat > ${f.dir}/cmd.out)`,
      "files@example.com 2.0.0 sent (delivered to maildir)",
    ]);
    const archive = Deno.readTextFileSync(`${f.dir}/archive`);
    assert(archive.startsWith("From sender@example.org  "));
    assertStringIncludes(archive, "\nDelivered-To: files@example.com\n");
    const piped = Deno.readTextFileSync(`${f.dir}/cmd.out`);
    assertStringIncludes(piped, "\nReturn-Path: <sender@example.org>\n");
    assert(piped.endsWith("Hello.\n"));
    assertEquals([...Deno.readDirSync(`${f.dir}/md/new`)].length, 1);
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  ":include: members are forwarded; files and commands are not allowed there by default",
  opts,
  async () => {
    const f = await localFixture();
    try {
      Deno.writeTextFileSync(
        `${f.dir}/members`,
        `# the list\ncarol\n\n${f.dir}/inc.out, "|cat > ${f.dir}/inc.cmd"\n`,
      );
      await f.aliases(`inc: :include:${f.dir}/members\n`);
      const { id, reply, log } = await f.deliver(["inc@example.com"]);
      assertEquals(statuses(log), [
        "inc@example.com 5.7.1 bounced (mail to file is restricted)",
        "inc@example.com 5.7.1 bounced (mail to command is restricted)",
        "inc@example.com 2.0.0 sent (forwarded as FWD1)",
      ]);
      assertEquals([...reply.results.values()], ["bounced"]);
      assertEquals(f.remaining(id), []);
      const copy = f.forwarded[0];
      assertEquals(copy.filter((r) => /^[SORM] /.test(r)), [
        "S sender@example.org",
        "O inc@example.com",
        "R carol@example.com",
        "M ",
      ]);
      const head = copy.slice(copy.indexOf("M ") + 1, copy.indexOf("M ") + 4);
      assertEquals(head[0], "N Received: by host.example.com (Posthorn)");
      assertMatch(
        head[1],
        /^N \tid FWD1; \w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\)$/,
      );
      assertEquals(head[2], "N Delivered-To: inc@example.com");
      assertEquals(copy.slice(-4), ["N ", "N Hello.", "X ", "E "]);
      f.env.settings.allowMailToFiles.add("include");
      const again = await f.deliver(["inc@example.com"]);
      assertEquals(
        statuses(again.log)[0],
        `inc@example.com 2.0.0 sent (delivered to file: ${f.dir}/inc.out)`,
      );
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("a missing or relative :include: file is a configuration error", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases(`inc: :include:${f.dir}/nothere\nrel: :include:members\n`);
    const { log } = await f.deliver(["inc@example.com"]);
    assertEquals(statuses(log), [
      "inc@example.com 5.3.5 bounced (mail system configuration error)",
    ]);
    assertStringIncludes(
      log.join("\n"),
      `warning: unable to lookup :include: file ${f.dir}/nothere: No such file or directory`,
    );
    const rel = await f.deliver(["rel@example.com"]);
    assertEquals(statuses(rel.log), [
      "rel@example.com 5.3.5 bounced (mail system configuration error)",
    ]);
    assertStringIncludes(rel.log.join("\n"), "warning: :include:members uses a relative path");
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "a list with an owner- alias is forwarded with the owner as envelope sender",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.aliases("list: alice\nowner-list: carol\n");
      const { log } = await f.deliver(["list@example.com"]);
      assertEquals(statuses(log), ["list@example.com 2.0.0 sent (forwarded as FWD1)"]);
      // The list's copy carries no original recipient.
      assertEquals(f.forwarded[0].filter((r) => /^[SOR] /.test(r)), [
        "S owner-list@example.com",
        "R alice@example.com",
      ]);
      f.env.settings.expandOwnerAlias = true;
      await f.deliver(["list@example.com"]);
      assertEquals(f.forwarded[1].filter((r) => /^S /.test(r)), ["S carol@example.com"]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test(
  "an alias naming itself delivers to the user; duplicates are delivered once",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.aliases("alice: alice, bob\nall: alice, bob, bob, team\nteam: bob, carol\n");
      const self = await f.deliver(["alice@example.com"]);
      assertEquals(statuses(self.log), [
        "alice@example.com 2.0.0 sent (delivered to mailbox)",
        "bob@example.com, orig_to=<alice@example.com> 2.0.0 sent (delivered to mailbox)",
      ]);
      const all = await f.deliver(["all@example.com"]);
      assertEquals(statuses(all.log).map((s) => s.split(",")[0]), [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
      ]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("mutually recursive aliases bounce as an alias database loop", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases("ping: pong\npong: ping\n");
    const { log } = await f.deliver(["ping@example.com"]);
    assertEquals(statuses(log).length, 1);
    assertStringIncludes(statuses(log)[0], " 5.4.6 bounced (alias database loop for p");
  } finally {
    await f.cleanup();
  }
});

Deno.test("a command over command_time_limit is killed and bounced", opts, async () => {
  const f = await localFixture({ command_time_limit: "1s" });
  try {
    await f.aliases(`slow: "|sleep 30"\n`);
    const started = Date.now();
    const { log } = await f.deliver(["slow@example.com"]);
    assert(Date.now() - started < 20_000);
    assertEquals(statuses(log), [
      `slow@example.com 5.3.0 bounced (Command time limit exceeded: "sleep 30")`,
    ]);
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "one deferred member keeps the recipient queued; the others are logged",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.aliases(`mixed: alice, "|exit 75"\n`);
      const { id, reply, log } = await f.deliver(["mixed@example.com"]);
      assertEquals(statuses(log), [
        "alice@example.com, orig_to=<mixed@example.com> 2.0.0 sent (delivered to mailbox)",
        "mixed@example.com 4.3.0 deferred (temporary failure)",
      ]);
      assertEquals([...reply.results.values()], ["deferred"]);
      assertEquals(f.remaining(id), ["mixed@example.com"]);
      assertEquals(f.bounce.calls.map((c) => c.log), ["defer"]);
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("mailbox_transport passes the recipient to that transport's agent", opts, async () => {
  const f = await localFixture({ mailbox_transport: "lmtp:inet:mailstore" });
  const seen: string[] = [];
  const agent = await serveAgent(f.env.privateDir, f.env.agent, async (s) => {
    seen.push(`${s.request.nexthop} ${s.request.recipients.map((r) => r.address)}`);
    for (const r of s.request.recipients) {
      await s.sent(r, { dsn: "2.0.0", relay: "mailstore", text: "250 ok" });
    }
  });
  Deno.renameSync(agent.path, `${f.env.privateDir}/lmtp`);
  try {
    await f.aliases("postmaster: alice\n");
    const { id, reply, log } = await f.deliver(["postmaster@example.com"]);
    assertEquals(seen, ["inet:mailstore alice@example.com"]);
    assertEquals(statuses(log), [
      "alice@example.com, orig_to=<postmaster@example.com> 2.0.0 sent (250 ok)",
    ]);
    assertEquals([...reply.results.values()], ["sent"]);
    assertEquals(f.remaining(id), []);
  } finally {
    await agent.close();
    await f.cleanup();
  }
});

Deno.test("fallback_transport takes unknown users; luser_relay redirects them", opts, async () => {
  const f = await localFixture({ fallback_transport: "relay" });
  const agent = await serveAgent(f.env.privateDir, f.env.agent, async (s) => {
    for (const r of s.request.recipients) {
      await s.deferred(r, { dsn: "4.4.1", relay: "none", text: "connection refused" });
    }
  });
  Deno.renameSync(agent.path, `${f.env.privateDir}/relay`);
  try {
    const known = await f.deliver(["bob@example.com"]);
    assertEquals(statuses(known.log), ["bob@example.com 2.0.0 sent (delivered to mailbox)"]);
    const unknown = await f.deliver(["nobody1@example.com"]);
    assertEquals(statuses(unknown.log), [
      "nobody1@example.com 4.4.1 deferred (connection refused)",
    ]);
    assertEquals([...unknown.reply.results.values()], ["deferred"]);
    f.env.settings.fallbackTransport = "";
    f.env.settings.luserRelay = "carol+$local";
    f.env.settings.recipientDelimiter = "+";
    const relayed = await f.deliver(["Nobody2@example.com"]);
    assertEquals(statuses(relayed.log), [
      "carol+nobody2@example.com, orig_to=<Nobody2@example.com> 2.0.0 sent (delivered to mailbox)",
    ]);
  } finally {
    await agent.close();
    await f.cleanup();
  }
});

Deno.test("an address that resolves elsewhere is forwarded through cleanup", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases("away: alice, friend@remote.test, other@remote.test\n");
    const { id, reply, log } = await f.deliver(["away@example.com"]);
    assertEquals(statuses(log), [
      "alice@example.com, orig_to=<away@example.com> 2.0.0 sent (delivered to mailbox)",
      "away@example.com 2.0.0 sent (forwarded as FWD1)",
    ]);
    assertEquals([...reply.results.values()], ["sent"]);
    assertEquals(f.remaining(id), []);
    assertEquals(f.forwarded[0].filter((r) => /^[SOR] /.test(r)), [
      "S sender@example.org",
      "O away@example.com",
      "R friend@remote.test",
      "O away@example.com",
      "R other@remote.test",
    ]);
    f.env.settings.cleanupService = `${f.dir}/no-cleanup`;
    const down = await f.deliver(["away@example.com"]);
    assertEquals(statuses(down.log), [
      "alice@example.com, orig_to=<away@example.com> 2.0.0 sent (delivered to mailbox)",
      "away@example.com 4.3.0 deferred (unable to forward message)",
    ]);
    assertEquals([...down.reply.results.values()], ["deferred"]);
    assertEquals(f.remaining(down.id), ["away@example.com"]);
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "an alias command gets the recipient's name as USER; no HOME for a root-owned database",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.aliases(`envdump: "|env > ${f.dir}/env.txt"\n`);
      const { log } = await f.deliver(["envdump@example.com"]);
      assertEquals(statuses(log), [
        `envdump@example.com 2.0.0 sent (delivered to command: env > ${f.dir}/env.txt)`,
      ]);
      const env = Deno.readTextFileSync(`${f.dir}/env.txt`).split("\n");
      for (
        const line of [
          "USER=envdump",
          "LOGNAME=envdump",
          "LOCAL=envdump",
          `PWD=${f.q.layout.queueDirectory}`,
        ]
      ) {
        assert(env.includes(line), `${line} missing from ${env}`);
      }
      if (Deno.uid() === 0) assert(!env.some((l) => l.startsWith("HOME=")), String(env));
    } finally {
      await f.cleanup();
    }
  },
);

Deno.test("address probes learn what would happen and nothing is delivered", opts, async () => {
  const f = await localFixture();
  const updates: string[] = [];
  f.env.agent.verify = (address, status, why) => {
    updates.push(`${address} ${status} ${why}`);
    return Promise.resolve(true);
  };
  try {
    await f.aliases("team: alice, bob\n");
    const probe = DeliverFlag.MTA_VRFY;
    const alias = await f.deliver(["team@example.com"], { flags: probe });
    assertEquals(statuses(alias.log), [
      "team@example.com 2.0.0 deliverable (aliased to alice, bob)",
    ]);
    const user = await f.deliver(["carol@example.com"], { flags: probe });
    assertEquals(statuses(user.log), ["carol@example.com 2.0.0 deliverable (delivers to mailbox)"]);
    const unknown = await f.deliver(["nosuch@example.com"], { flags: probe });
    assertEquals(statuses(unknown.log), [
      `nosuch@example.com 5.1.1 undeliverable (unknown user: "nosuch")`,
    ]);
    assertEquals(updates.map((u) => u.split(" ")[0]), [
      "team@example.com",
      "carol@example.com",
      "nosuch@example.com",
    ]);
    assertEquals([...Deno.readDirSync(f.spool)].length, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("user+a and user+b from one list are two mailbox deliveries", opts, async () => {
  const f = await localFixture({ recipient_delimiter: "+" });
  try {
    await f.aliases("dupext: alice+a, alice+b, alice+a\n");
    const { log } = await f.deliver(["dupext@example.com"]);
    assertEquals(statuses(log), [
      "alice+a@example.com, orig_to=<dupext@example.com> 2.0.0 sent (delivered to mailbox)",
      "alice+b@example.com, orig_to=<dupext@example.com> 2.0.0 sent (delivered to mailbox)",
    ]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a forwarded copy drops NOTIFY=SUCCESS; a list's copy keeps no ORCPT", opts, async () => {
  const f = await localFixture();
  try {
    await f.aliases("away: friend@remote.test\nlist: alice\nowner-list: carol\n");
    await f.deliver(["away@example.com"], { notify: 2 | 4 });
    assertEquals(f.forwarded[0].filter((r) => /^[nR] /.test(r)), ["n 4", "R friend@remote.test"]);
    await f.deliver(["away@example.com"], { notify: 2 });
    assertEquals(f.forwarded[1].filter((r) => /^n /.test(r)), ["n 1"]);
    await f.deliver(["list@example.com"], { notify: 4 });
    assertEquals(f.forwarded[2].filter((r) => /^[SOon] /.test(r)), [
      "S owner-list@example.com",
      "n 4",
    ]);
  } finally {
    await f.cleanup();
  }
});

Deno.test(
  "NOTIFY=SUCCESS to an alias is reported once as expanded, not per member",
  opts,
  async () => {
    const f = await localFixture();
    try {
      await f.aliases("team: alice, bob\n");
      const { reply, log } = await f.deliver(["team@example.com"], { notify: 2 | 4 });
      assertEquals(statuses(log).length, 2);
      assertEquals(
        f.bounce.calls.map((c) => [c.log, c.rcpt, c.dsn?.action, c.dsn?.reason]),
        [["trace", "team@example.com", "expanded", "delivery via local: alias expanded"]],
      );
      assert(reply.traced);
    } finally {
      await f.cleanup();
    }
  },
);
