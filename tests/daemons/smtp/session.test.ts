// The smtp client's conversation against scripted servers: per-recipient
// results and Postfix's log wording for each way a server can fail.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { deliver, fakeServer, opts } from "./helpers.ts";

Deno.test(
  "smtp delivers with pipelining and logs status=sent with the server's reply",
  opts,
  async () => {
    const srv = await fakeServer();
    try {
      const r = await deliver({
        nexthop: `[127.0.0.1]:${srv.port}`,
        recipients: ["a@remote.example", "b@remote.example"],
        body: ["Subject: hi", "", ".leading dot", "body"],
      });
      assertEquals([...r.reply.results.values()], ["sent", "sent"]);
      assertEquals(r.left, 0);
      assertStringIncludes(
        r.log,
        `${r.id}: to=<a@remote.example>, relay=127.0.0.1[127.0.0.1]:${srv.port}, delay=`,
      );
      assertStringIncludes(r.log, "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as Q1)");
      assert(/delays=[\d.]+\/[\d.]+\/[\d.]+\/[\d.]+/.test(r.log), r.log);
      const s = srv.sessions[0];
      assertEquals(s.lines[0], "EHLO client.example");
      assertEquals(s.lines[1].startsWith("MAIL FROM:<sender@example.org> SIZE="), true, s.lines[1]);
      assertEquals(s.lines.slice(2, 5), [
        "RCPT TO:<a@remote.example> ORCPT=rfc822;a@remote.example",
        "RCPT TO:<b@remote.example> ORCPT=rfc822;b@remote.example",
        "DATA",
      ]);
      assertStringIncludes(s.messages[0], "\r\n..leading dot\r\nbody");
      assertEquals(s.lines.at(-1), "QUIT");
      assert(s.maxBatch >= 4, "MAIL, RCPT, RCPT and DATA went as one batch");
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp without PIPELINING sends one command at a time and stops after MAIL is refused",
  opts,
  async () => {
    const srv = await fakeServer({
      extensions: ["SIZE 1000000"],
      replies: { MAIL: "553 5.7.1 <sender@example.org>: Sender address rejected" },
    });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
      assertEquals([...r.reply.results.values()], ["bounced"]);
      assertStringIncludes(
        r.log,
        "dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 553 5.7.1 <sender@example.org>: Sender address rejected (in reply to MAIL FROM command))",
      );
      assertEquals(srv.sessions[0].lines.some((l) => l.startsWith("RCPT")), false);
      assertEquals(r.bounce[0].dsn?.diagType, "smtp");
      assertEquals(
        r.bounce[0].dsn?.diagText,
        "553 5.7.1 <sender@example.org>: Sender address rejected",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp bounces a 5xx recipient, defers a 4xx one and sends the rest", opts, async () => {
  const srv = await fakeServer({
    replies: {
      RCPT: (line) =>
        line.includes("bad@")
          ? "550 5.1.1 <bad@remote.example>: Recipient address rejected: User unknown"
          : line.includes("later@")
          ? "450 4.2.0 <later@remote.example>: Recipient address rejected: Greylisted"
          : undefined,
    },
  });
  try {
    const r = await deliver({
      nexthop: `[127.0.0.1]:${srv.port}`,
      recipients: ["bad@remote.example", "later@remote.example", "good@remote.example"],
    });
    assertEquals([...r.reply.results.values()], ["bounced", "deferred", "sent"]);
    assertStringIncludes(
      r.log,
      "to=<bad@remote.example>, relay=127.0.0.1[127.0.0.1]:" + srv.port,
    );
    assertStringIncludes(
      r.log,
      "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@remote.example>: Recipient address rejected: User unknown (in reply to RCPT TO command))",
    );
    assertStringIncludes(
      r.log,
      "dsn=4.2.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <later@remote.example>: Recipient address rejected: Greylisted (in reply to RCPT TO command))",
    );
    assertEquals(r.left, 1, "the deferred recipient stays");
    assertEquals(r.reply.status, 0);
  } finally {
    await srv.close();
  }
});

Deno.test("smtp defers when the connection is refused, relay=none", opts, async () => {
  const srv = await fakeServer();
  const port = srv.port;
  await srv.close();
  const r = await deliver({ nexthop: `[127.0.0.1]:${port}` });
  assertEquals([...r.reply.results.values()], ["deferred"]);
  assertEquals(r.reply.status, 1, "a site failure tells qmgr");
  assertStringIncludes(
    r.log,
    `relay=none, delay=`,
  );
  assertStringIncludes(
    r.log,
    `dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused)`,
  );
});

Deno.test("smtp: a greeting that stalls times out with Postfix's text", opts, async () => {
  const srv = await fakeServer({ raw: new Uint8Array(0) });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` }, "smtp_helo_timeout = 1s");
    assertStringIncludes(
      r.log,
      "dsn=4.4.2, status=deferred (conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting)",
    );
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp: a server that hangs up at once: lost connection while receiving the greeting",
  opts,
  async () => {
    const { createServer } = await import("node:net");
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${port}` });
      assertStringIncludes(
        r.log,
        `relay=127.0.0.1[127.0.0.1]:${port}, delay=`,
      );
      assertStringIncludes(
        r.log,
        "dsn=4.4.2, status=deferred (lost connection with 127.0.0.1[127.0.0.1] while receiving the initial server greeting)",
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
  },
);

Deno.test(
  "smtp: a 5xx greeting is skipped (deferred, 4.x.x) by default and bounces without smtp_skip_5xx_greeting",
  opts,
  async () => {
    const srv = await fakeServer({ greeting: "554 5.7.1 go away" });
    try {
      const soft = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
      assertStringIncludes(
        soft.log,
        "dsn=4.7.1, status=deferred (host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away)",
      );
      const hard = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_skip_5xx_greeting = no",
      );
      assertStringIncludes(
        hard.log,
        "dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away)",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp: garbage instead of a greeting is skipped and the greeting times out, as the reference",
  opts,
  async () => {
    const srv = await fakeServer({ greeting: "SSH-2.0-OpenSSH_9.2" });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` }, "smtp_helo_timeout = 1s");
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(
        r.log,
        "dsn=4.4.2, status=deferred (conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting)",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp: garbage lines before a valid greeting are skipped", opts, async () => {
  const srv = await fakeServer({
    greeting: "hello there\r\n* garbage *\r\n220 fake.example ESMTP",
  });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
    assertEquals([...r.reply.results.values()], ["sent"]);
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp: replies without an enhanced code get X.0.0 (greeting 554 skipped as 4.0.0)",
  opts,
  async () => {
    const srv = await fakeServer({ greeting: "554 go away" });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
      assertStringIncludes(
        r.log,
        "dsn=4.0.0, status=deferred (host 127.0.0.1[127.0.0.1] refused to talk to me: 554 go away)",
      );
    } finally {
      await srv.close();
    }
    const rcpt = await fakeServer({ replies: { RCPT: "550 no such user" } });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${rcpt.port}` });
      assertStringIncludes(
        r.log,
        "dsn=5.0.0, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 no such user (in reply to RCPT TO command))",
      );
    } finally {
      await rcpt.close();
    }
  },
);

Deno.test(
  "smtp: a 10 MB reply line is cut, read and dropped; the delivery goes on",
  opts,
  async () => {
    const { createServer } = await import("node:net");
    const server = createServer((s) => {
      s.on("error", () => {});
      const big = new Uint8Array(10 * 1024 * 1024).fill(0x61);
      s.write("220-");
      s.write(big);
      s.write("\r\n220 ok\r\n");
      s.on("data", () => {});
      setTimeout(() => s.destroy(), 3000);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${port}` }, "smtp_helo_timeout = 2s");
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(r.log, "status=deferred (");
      assert(r.log.length < 20_000, "the log does not carry the long line");
    } finally {
      await new Promise((r) => server.close(r));
    }
  },
);

Deno.test("smtp falls back to HELO when EHLO is refused; HELO refusal bounces", opts, async () => {
  const srv = await fakeServer({ replies: { EHLO: "502 5.5.2 Error: command not recognized" } });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].lines.slice(0, 3), [
      "EHLO client.example",
      "HELO client.example",
      "MAIL FROM:<sender@example.org>",
    ]);
  } finally {
    await srv.close();
  }
  const bad = await fakeServer({
    extensions: [],
    replies: { EHLO: "500 no", HELO: "550 5.7.1 you are not welcome" },
  });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${bad.port}` });
    assertStringIncludes(
      r.log,
      "dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1 you are not welcome (in reply to HELO command))",
    );
  } finally {
    await bad.close();
  }
});

Deno.test("smtp_never_send_ehlo sends HELO; smtp_helo_name names us", opts, async () => {
  const srv = await fakeServer();
  try {
    await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_never_send_ehlo = yes\nsmtp_helo_name = relay.example",
    );
    assertEquals(srv.sessions[0].lines[0], "HELO relay.example");
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp refuses a message larger than the server's SIZE before sending it",
  opts,
  async () => {
    const srv = await fakeServer({ extensions: ["SIZE 10"] });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
      assertEquals([...r.reply.results.values()], ["bounced"]);
      assert(
        /dsn=5\.3\.4, status=bounced \(message size \d+ exceeds size limit 10 of server 127\.0\.0\.1\[127\.0\.0\.1\]\)/
          .test(r.log),
        r.log,
      );
      assertEquals(srv.sessions[0].lines.some((l) => l.startsWith("MAIL")), false);
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp bounces SMTPUTF8 mail to a server without SMTPUTF8 (5.6.7)", opts, async () => {
  const srv = await fakeServer();
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}`, smtputf8: 1 });
    assertStringIncludes(
      r.log,
      "dsn=5.6.7, status=bounced (SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1])",
    );
  } finally {
    await srv.close();
  }
  const utf8 = await fakeServer({ extensions: ["PIPELINING", "8BITMIME", "SMTPUTF8"] });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${utf8.port}`, smtputf8: 1 });
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertStringIncludes(utf8.sessions[0].lines[1], " SMTPUTF8");
  } finally {
    await utf8.close();
  }
});

Deno.test(
  "smtp forwards DSN parameters (RET, ENVID, NOTIFY, ORCPT) when DSN is offered",
  opts,
  async () => {
    const srv = await fakeServer();
    try {
      await deliver({
        nexthop: `[127.0.0.1]:${srv.port}`,
        ret: 2,
        envid: "id+1=x",
        notify: 2 | 4,
        dsnOrcpt: "rfc822;orig@remote.example",
        encoding: "8bit",
      });
      const [mail, rcpt] = srv.sessions[0].lines.slice(1, 3);
      assertStringIncludes(mail, " BODY=8BITMIME RET=HDRS ENVID=id+2B1+3Dx");
      assertEquals(
        rcpt,
        "RCPT TO:<rcpt@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@remote.example",
      );
    } finally {
      await srv.close();
    }
    const plain = await fakeServer({ extensions: ["PIPELINING"] });
    try {
      await deliver({ nexthop: `[127.0.0.1]:${plain.port}`, ret: 2, notify: 2 });
      assertEquals(plain.sessions[0].lines[1], "MAIL FROM:<sender@example.org>");
      assertEquals(plain.sessions[0].lines[2], "RCPT TO:<rcpt@remote.example>");
    } finally {
      await plain.close();
    }
  },
);

Deno.test(
  "smtp converts 8bit MIME to quoted-printable for a server without 8BITMIME",
  opts,
  async () => {
    const srv = await fakeServer({ extensions: ["PIPELINING"] });
    const body = [
      "Subject: caf\u00e9",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      "caf\u00e9 = ok and a long line " + "a".repeat(94) + " end",
      "trailing space ",
    ];
    try {
      await deliver({ nexthop: `[127.0.0.1]:${srv.port}`, encoding: "8bit", body });
      const m = srv.sessions[0].messages[0];
      assertStringIncludes(m, "Content-Transfer-Encoding: quoted-printable");
      // Byte for byte what the reference's smtp client sends to a server without 8BITMIME.
      assertStringIncludes(
        m,
        "caf=C3=A9 =3D ok and a long line " + "a".repeat(40) + "=\r\n" + "a".repeat(54) +
          " end\r\ntrailing space=20",
      );
      const again = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}`, encoding: "8bit", body },
        "disable_mime_output_conversion = yes",
      );
      assertEquals([...again.reply.results.values()], ["sent"]);
      assertStringIncludes(srv.sessions[1].messages[0], "Content-Transfer-Encoding: 8bit");
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp: a reply that never comes times out with the stage in the text", opts, async () => {
  const { createServer } = await import("node:net");
  const server = createServer((s) => {
    s.on("error", () => {});
    s.write("220 slow ESMTP\r\n");
    s.on("data", (d: Uint8Array) => {
      if (new TextDecoder().decode(d).startsWith("EHLO")) s.write("250 slow\r\n");
      // MAIL FROM gets no answer.
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${port}` }, "smtp_mail_timeout = 1s");
    assertStringIncludes(
      r.log,
      "dsn=4.4.2, status=deferred (conversation with 127.0.0.1[127.0.0.1] timed out while sending MAIL FROM)",
    );
  } finally {
    await new Promise((r) => server.close(r));
  }
});

Deno.test("smtp: end of DATA refused applies to every accepted recipient", opts, async () => {
  const srv = await fakeServer({ replies: { ".": "554 5.7.1 Message rejected: spam" } });
  try {
    const r = await deliver({
      nexthop: `[127.0.0.1]:${srv.port}`,
      recipients: ["a@remote.example", "b@remote.example"],
    });
    assertEquals([...r.reply.results.values()], ["bounced", "bounced"]);
    assertStringIncludes(
      r.log,
      "status=bounced (host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Message rejected: spam (in reply to end of DATA command))",
    );
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp breaks lines longer than smtp_line_length_limit with CRLF SPACE",
  opts,
  async () => {
    const srv = await fakeServer();
    try {
      await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}`, body: ["Subject: x", "", "a".repeat(25)] },
        "smtp_line_length_limit = 10",
      );
      assertStringIncludes(srv.sessions[0].messages[0], "aaaaaaaaaa\r\n aaaaaaaaaa\r\n aaaaa");
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp_generic_maps rewrites the envelope sender and address headers", opts, async () => {
  const srv = await fakeServer();
  try {
    await deliver(
      {
        nexthop: `[127.0.0.1]:${srv.port}`,
        sender: "user@internal.example",
        body: [
          "From: User Name <user@internal.example>",
          "To: other@remote.example,",
          " user@internal.example (me)",
          "Subject: user@internal.example stays",
          "Cc: aaaaaaaaaa@remote.example, bbbbbbbbbb@remote.example, user@internal.example, cccccccccc@remote.example, dddddddddd@remote.example",
          "",
          "user@internal.example stays in the body",
        ],
      },
      "smtp_generic_maps = inline:{user@internal.example=user@public.example}",
    );
    assertStringIncludes(srv.sessions[0].lines[1], "MAIL FROM:<user@public.example>");
    const m = srv.sessions[0].messages[0];
    assertStringIncludes(m, "From: User Name <user@public.example>\r\n");
    // As the reference prints it (checked against its smtp client).
    assertStringIncludes(m, "To: other@remote.example, user@public.example (me)\r\n");
    assertStringIncludes(m, "Subject: user@internal.example stays\r\n");
    assertStringIncludes(
      m,
      "Cc: aaaaaaaaaa@remote.example, bbbbbbbbbb@remote.example,\r\n\tuser@public.example, cccccccccc@remote.example,\r\n\tdddddddddd@remote.example\r\n",
    );
    assertStringIncludes(m, "\r\nuser@internal.example stays in the body");
  } finally {
    await srv.close();
  }
});

Deno.test("smtp: a bad port in the next hop defers with a clear reason", opts, async () => {
  const r = await deliver({ nexthop: "[127.0.0.1]:nosuchport" });
  assertEquals([...r.reply.results.values()], ["deferred"]);
  assertStringIncludes(r.log, "bad port in destination: [127.0.0.1]:nosuchport");
});

Deno.test(
  "smtp address probes stop after RCPT TO: deliverable and undeliverable, no message sent",
  opts,
  async () => {
    const srv = await fakeServer({
      replies: { RCPT: (l) => (l.includes("bad@") ? "550 5.1.1 unknown user" : undefined) },
    });
    try {
      const r = await deliver({
        nexthop: `[127.0.0.1]:${srv.port}`,
        recipients: ["good@remote.example", "bad@remote.example"],
        flags: 1 << 9, // DEL_REQ_FLAG_USR_VRFY (sendmail -bv)
      });
      assertStringIncludes(r.log, "status=deliverable (250 2.1.5 Ok)");
      assertStringIncludes(
        r.log,
        "status=undeliverable (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 unknown user (in reply to RCPT TO command))",
      );
      assertEquals(srv.sessions[0].lines.includes("DATA"), false);
      assertEquals(srv.sessions[0].messages.length, 0);
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp logs a multi-line reply with every line's code, as the reference",
  opts,
  async () => {
    const srv = await fakeServer({
      replies: { RCPT: "550-5.1.1 first line\r\n550-5.1.1 second line\r\n550 5.1.1 last line" },
    });
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
      assertStringIncludes(
        r.log,
        "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.1.1 first line 550-5.1.1 second line 550 5.1.1 last line (in reply to RCPT TO command))",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp_bind_address sets the local address; smtp_tls_note_starttls_offer logs an unused offer",
  opts,
  async () => {
    const srv = await fakeServer({ extensions: ["PIPELINING", "STARTTLS"] });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_bind_address = 127.0.0.2\nsmtp_tls_note_starttls_offer = yes",
      );
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertEquals(srv.sessions[0].peer, "127.0.0.2");
      assertStringIncludes(r.log, "Host offered STARTTLS: [127.0.0.1]");
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp_send_xforward_command forwards the original client to a server offering XFORWARD",
  opts,
  async () => {
    const srv = await fakeServer({
      extensions: ["XFORWARD NAME ADDR PROTO HELO SOURCE"],
      replies: { XFORWARD: "250 2.0.0 Ok" },
    });
    try {
      const r = await deliver(
        {
          nexthop: `[127.0.0.1]:${srv.port}`,
          attrs: {
            client_name: "client.example.org",
            client_address: "2001:db8::1",
            helo_name: "helo.example.org",
            protocol_name: "ESMTP",
            rewrite_context: "remote",
          },
        },
        "smtp_send_xforward_command = yes",
      );
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertEquals(srv.sessions[0].lines.slice(1, 3), [
        "XFORWARD NAME=client.example.org ADDR=IPV6:2001:db8::1",
        "XFORWARD PROTO=ESMTP HELO=helo.example.org SOURCE=REMOTE",
      ]);
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp sends a 2 MB message whole, in pieces under the transfer timeout",
  opts,
  async () => {
    const srv = await fakeServer();
    const body = ["Subject: big", ""];
    for (let i = 0; i < 20_000; i++) body.push((i % 7 === 0 ? "." : "x") + "y".repeat(99));
    try {
      const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}`, body });
      assertEquals([...r.reply.results.values()], ["sent"]);
      const lines = srv.sessions[0].messages[0].split("\r\n");
      assertEquals(lines.length, body.length);
      assertEquals(lines[2], "..y" + "y".repeat(98), "a leading dot is doubled");
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp takes a multi-line reply's enhanced code from its last line", opts, async () => {
  const srv = await fakeServer({
    replies: { RCPT: "550-5.7.1 policy says no\r\n550 5.1.1 no such user" },
  });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
    assertStringIncludes(
      r.log,
      "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1",
    );
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp_reply_filter rewrites reply lines; smtp_delivery_status_filter the reported status",
  opts,
  async () => {
    const srv = await fakeServer({
      replies: { RCPT: "450 4.7.1 greylisted, come back later" },
    });
    try {
      const filtered = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_reply_filter = inline:{{450 4.7.1 greylisted, come back later = 550 5.7.1 filtered}}",
      );
      assertStringIncludes(
        filtered.log,
        "dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1 filtered (in reply to RCPT TO command))",
      );
      const dir = Deno.makeTempDirSync();
      Deno.writeTextFileSync(`${dir}/dsn`, "/^4(\\.[0-9]+\\.[0-9]+ host .* greylisted.*)/ 5$1\n");
      const status = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        `smtp_delivery_status_filter = regexp:${dir}/dsn`,
      );
      Deno.removeSync(dir, { recursive: true });
      assertEquals([...status.reply.results.values()], ["bounced"]);
      assertStringIncludes(
        status.log,
        "dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 450 4.7.1 greylisted",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp: a 421 to MAIL FROM and a hang-up defer the message", opts, async () => {
  const srv = await fakeServer({
    extensions: [],
    replies: { MAIL: "421 4.3.2 Service shutting down" },
  });
  try {
    const r = await deliver({ nexthop: `[127.0.0.1]:${srv.port}` });
    assertEquals([...r.reply.results.values()], ["deferred"]);
    assertStringIncludes(
      r.log,
      "dsn=4.3.2, status=deferred (host 127.0.0.1[127.0.0.1] said: 421 4.3.2 Service shutting down (in reply to MAIL FROM command))",
    );
  } finally {
    await srv.close();
  }
});

Deno.test("smtp reaches an IPv6 literal next hop", opts, async () => {
  let srv;
  try {
    srv = await fakeServer({ host: "::1" });
  } catch {
    return; // No IPv6 loopback here.
  }
  try {
    const r = await deliver({ nexthop: `[ipv6:::1]:${srv.port}` });
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertStringIncludes(r.log, `relay=::1[::1]:${srv.port}, delay=`);
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp_discard_ehlo_keyword_address_maps turns PIPELINING off for one server",
  opts,
  async () => {
    const srv = await fakeServer();
    try {
      const r = await deliver(
        {
          nexthop: `[127.0.0.1]:${srv.port}`,
          recipients: ["a@remote.example", "b@remote.example"],
        },
        "smtp_discard_ehlo_keyword_address_maps = inline:{127.0.0.1=pipelining}",
      );
      assertEquals([...r.reply.results.values()], ["sent", "sent"]);
      assertStringIncludes(r.log, "discarding EHLO keywords: PIPELINING");
      assertEquals(srv.sessions[0].maxBatch, 1, "one command at a time");
      assertStringIncludes(srv.sessions[0].lines[2], "ORCPT=", "other keywords still count");
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp success notices: relayed when the server lacks DSN, left to a server that has it",
  opts,
  async () => {
    const plain = await fakeServer({ extensions: ["PIPELINING"] });
    const dsn = await fakeServer();
    try {
      const relayed = await deliver({ nexthop: `[127.0.0.1]:${plain.port}`, notify: 2 });
      assertEquals(
        relayed.bounce.map((c) => [c.log, c.dsn?.action]),
        [["trace", "relayed"]],
      );
      const forwarded = await deliver({ nexthop: `[127.0.0.1]:${dsn.port}`, notify: 2 });
      assertEquals(forwarded.bounce.length, 0, "the next server reports success");
      assertStringIncludes(dsn.sessions[0].lines[2], "NOTIFY=SUCCESS");
    } finally {
      await plain.close();
      await dsn.close();
    }
  },
);
