// The lmtp client: LHLO, unix-domain and TCP next hops, one reply per
// recipient after the message, and the lmtp_* parameters.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { deliver, fakeServer, opts } from "./helpers.ts";

Deno.test(
  "lmtp over a unix socket: LHLO, one reply per recipient, relay=myhostname[path]",
  opts,
  async () => {
    const dir = Deno.makeTempDirSync();
    const path = `${dir}/lmtp.sock`;
    const srv = await fakeServer({
      lmtp: true,
      greeting: "220 lmtp.example LMTP ready",
      lmtpFinal: (rcpt) =>
        rcpt.startsWith("full@")
          ? "452 4.2.2 <full@local.example> Mailbox is full"
          : rcpt.startsWith("gone@")
          ? "550 5.1.1 <gone@local.example> User doesn't exist"
          : "250 2.0.0 <ok@local.example> Saved",
    }, path);
    try {
      const r = await deliver(
        {
          nexthop: `unix:${path}`,
          recipients: ["ok@local.example", "full@local.example", "gone@local.example"],
        },
        "lmtp_lhlo_name = lhlo.example",
        "lmtp",
      );
      assertEquals([...r.reply.results.values()], ["sent", "deferred", "bounced"]);
      assertEquals(srv.sessions[0].lines[0], "LHLO lhlo.example");
      assertStringIncludes(
        r.log,
        `to=<ok@local.example>, relay=client.example[${path}], delay=`,
      );
      assertStringIncludes(r.log, "dsn=2.0.0, status=sent (250 2.0.0 <ok@local.example> Saved)");
      assertStringIncludes(
        r.log,
        `dsn=4.2.2, status=deferred (host client.example[${path}] said: 452 4.2.2 <full@local.example> Mailbox is full (in reply to end of DATA command))`,
      );
      assertStringIncludes(
        r.log,
        `dsn=5.1.1, status=bounced (host client.example[${path}] said: 550 5.1.1 <gone@local.example> User doesn't exist (in reply to end of DATA command))`,
      );
    } finally {
      await srv.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

Deno.test("lmtp over TCP with inet:host:port and a host name without MX lookup", opts, async () => {
  const srv = await fakeServer({ lmtp: true });
  try {
    const r = await deliver({ nexthop: `inet:127.0.0.1:${srv.port}` }, "", "lmtp");
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertStringIncludes(r.log, `relay=127.0.0.1[127.0.0.1]:${srv.port}`);
    const byName = await deliver(
      { nexthop: "localhost" },
      `lmtp_tcp_port = ${srv.port}\nlmtp_host_lookup = native\ninet_protocols = ipv4`,
      "lmtp",
    );
    assertEquals([...byName.reply.results.values()], ["sent"]);
    assertStringIncludes(byName.log, `relay=localhost[127.0.0.1]:${srv.port}`);
  } finally {
    await srv.close();
  }
});

Deno.test("lmtp: an LHLO refusal and a stalled final reply", opts, async () => {
  const refuse = await fakeServer({ lmtp: true, replies: { LHLO: "500 5.5.1 no LHLO here" } });
  try {
    const r = await deliver({ nexthop: `inet:127.0.0.1:${refuse.port}` }, "", "lmtp");
    assertStringIncludes(
      r.log,
      "status=bounced (host 127.0.0.1[127.0.0.1] said: 500 5.5.1 no LHLO here (in reply to LHLO command))",
    );
  } finally {
    await refuse.close();
  }
  const stall = await fakeServer({ lmtp: true, lmtpFinal: () => "" });
  try {
    const r = await deliver(
      { nexthop: `inet:127.0.0.1:${stall.port}` },
      "lmtp_data_done_timeout = 1s",
      "lmtp",
    );
    assertStringIncludes(
      r.log,
      "status=deferred (conversation with 127.0.0.1[127.0.0.1] timed out while sending end of data -- message may be sent more than once)",
    );
  } finally {
    await stall.close();
  }
});
