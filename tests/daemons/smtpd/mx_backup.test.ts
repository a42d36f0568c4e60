// permit_mx_backup against the test DNS server: permitted where this host
// (127.0.0.1, inet_interfaces) is a backup MX host only, not where it is a
// primary one or no MX host at all, and under permit_mx_backup_networks
// only when the primary MX hosts are in those networks; a temporary DNS
// failure defers what would be rejected.

import { assertEquals } from "../../assert.ts";
import { session, start, stop } from "./helpers.ts";
import { TestDnsServer } from "../../lib/dns/server.ts";

const ZONE = [
  { name: "me.test", type: "A" as const, value: "127.0.0.1" },
  { name: "primary.test", type: "A" as const, value: "192.0.2.50" },
  { name: "backup.example", type: "MX" as const, value: "primary.test", preference: 10 },
  { name: "backup.example", type: "MX" as const, value: "me.test", preference: 20 },
  { name: "first.example", type: "MX" as const, value: "me.test", preference: 10 },
  { name: "first.example", type: "MX" as const, value: "primary.test", preference: 20 },
  { name: "other.example", type: "MX" as const, value: "primary.test", preference: 10 },
];

async function run(extra: string, rcpts: string[]): Promise<string[]> {
  const dns = await TestDnsServer.start(ZONE);
  dns.fail("broken.example", "servfail");
  const inst = await start(
    `posthorn_dns_servers = ${dns.spec}\nrelay_domains = ok.example\n` +
      "smtpd_relay_restrictions =\n" +
      "smtpd_recipient_restrictions = permit_mx_backup, reject_unauth_destination\n" + extra,
  );
  try {
    const got = await session(inst.port, [
      "HELO y",
      "MAIL FROM:<s@example.org>",
      ...rcpts.map((r) => `RCPT TO:<${r}>`),
      "QUIT",
    ]);
    return got.slice(3, -1);
  } finally {
    await stop(inst);
    await dns.close();
  }
}

Deno.test({
  name: "permit_mx_backup permits a backup MX domain and authorized destinations only",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(
      await run("", [
        "u@backup.example",
        "u@ok.example",
        "u@first.example",
        "u@other.example",
        "u@broken.example",
        "u%x@backup.example",
      ]),
      [
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "554 5.7.1 <u@first.example>: Relay access denied",
        "554 5.7.1 <u@other.example>: Relay access denied",
        "450 4.4.4 <u@broken.example>: Recipient address rejected: Unable to look up mail " +
        "exchanger information: Host not found, try again",
        "554 5.7.1 <u%x@backup.example>: Relay access denied",
      ],
    );
  },
});

Deno.test({
  name: "permit_mx_backup_networks must hold the primary MX hosts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(
      await run("permit_mx_backup_networks = 192.0.2.0/28\n", ["u@backup.example"]),
      ["554 5.7.1 <u@backup.example>: Relay access denied"],
    );
    assertEquals(
      await run("permit_mx_backup_networks = 192.0.2.0/24\n", ["u@backup.example"]),
      ["250 2.1.5 Ok"],
    );
  },
});
