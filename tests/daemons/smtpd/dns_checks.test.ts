// smtpd's DNS-based restrictions against the test DNS server
// (posthorn_dns_servers points smtpd at it): the client hostname lookup and
// reject_unknown_(reverse_)client_hostname, DNS allow and block lists with
// their replies and log lines, reject_unknown_{sender,recipient}_domain and
// reject_unknown_helo_hostname with their temporary-failure actions, and the
// MX/NS/A access checks. Clients connect from 127.0.0.x source addresses so
// each has its own reverse DNS.

import net from "node:net";
import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { type Instance, logHas, maillog, start, stop } from "./helpers.ts";
import { TestDnsServer, type ZoneRecord } from "../../lib/dns/server.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

const ZONE: ZoneRecord[] = [
  // Client names: .5 confirmed, .6 forged, .7 none, .8 PTR fails, .9 forward lookup fails.
  { name: "5.0.0.127.in-addr.arpa", type: "PTR", value: "good.example" },
  { name: "good.example", type: "A", value: "127.0.0.5" },
  { name: "6.0.0.127.in-addr.arpa", type: "PTR", value: "forged.example" },
  { name: "forged.example", type: "A", value: "192.0.2.66" },
  { name: "9.0.0.127.in-addr.arpa", type: "PTR", value: "tempfail.example" },
  // Lists.
  { name: "10.0.0.127.zen.example", type: "A", value: "127.0.0.2" },
  { name: "10.0.0.127.zen.example", type: "TXT", value: "listed at zen" },
  { name: "10.0.0.127.zen.example", type: "TXT", value: "see https://zen.example/" },
  { name: "11.0.0.127.zen.example", type: "A", value: "127.0.0.4" },
  { name: "11.0.0.127.custom.example", type: "A", value: "127.0.0.2" },
  { name: "12.0.0.127.wl.example", type: "A", value: "127.0.5.1" },
  { name: "12.0.0.127.zen.example", type: "A", value: "127.0.0.2" },
  { name: "13.0.0.127.black.example", type: "A", value: "127.0.0.2" },
  { name: "spam.example.rhs.example", type: "A", value: "127.0.0.2" },
  { name: "forged.example.rhs.example", type: "A", value: "127.0.0.2" },
  { name: "good.example.rhs.example", type: "A", value: "127.0.0.2" },
  // Domains.
  { name: "exists.example", type: "MX", value: "mail.exists.example", preference: 10 },
  { name: "mail.exists.example", type: "A", value: "192.0.2.10" },
  { name: "nomx.example", type: "A", value: "192.0.2.11" },
  { name: "nullmx.example", type: "MX", value: "", preference: 0 },
  { name: "badmx.example", type: "MX", value: "192.0.2.12", preference: 10 },
  // MX/NS/A access.
  { name: "mxbad.example", type: "MX", value: "mx.badhost.example", preference: 10 },
  { name: "mx.badhost.example", type: "A", value: "192.0.2.20" },
  { name: "viaaddr.example", type: "MX", value: "mx.viaaddr.example", preference: 10 },
  { name: "mx.viaaddr.example", type: "A", value: "192.0.2.99" },
  { name: "nsdomain.example", type: "NS", value: "ns.evil.example" },
  { name: "ns.evil.example", type: "A", value: "192.0.2.30" },
  { name: "sub.nsdomain.example", type: "A", value: "192.0.2.31" },
  { name: "ahost.example", type: "A", value: "192.0.2.77" },
  { name: "okmx.example", type: "MX", value: "mx.ok.example", preference: 10 },
];

/** One SMTP session from a given loopback source address: [greeting, ...replies]. */
function sessionFrom(port: number, from: string, lines: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const out: string[] = [];
    let buf = "";
    let current: string[] = [];
    let next = 0;
    const sock = net.connect({ host: "127.0.0.1", port, localAddress: from });
    sock.setEncoding("utf8");
    sock.on("error", reject);
    sock.on("close", () => resolve(out));
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        current.push(line);
        if (line.length >= 4 && line[3] === "-") continue;
        out.push(current.join("\n"));
        current = [];
        if (next < lines.length) sock.write(lines[next++] + "\r\n");
        else sock.end();
      }
    });
  });
}

/** Starts the DNS server, then smtpd pointed at it. */
async function withDns(
  extra: string,
  fn: (inst: Instance, dns: TestDnsServer) => Promise<void>,
  files: Record<string, string> = {},
): Promise<void> {
  const dns = await TestDnsServer.start(ZONE);
  dns.fail("8.0.0.127.in-addr.arpa", "servfail");
  dns.fail("tempfail.example", "servfail");
  dns.fail("broken.example", "servfail");
  dns.fail("13.0.0.127.zen.example", "servfail");
  dns.fail("13.0.0.127.wl.example", "servfail");
  let inst: Instance | undefined;
  try {
    inst = await start(
      `posthorn_dns_servers = ${dns.spec}\n` + extra,
    );
    for (const [name, text] of Object.entries(files)) {
      Deno.writeTextFileSync(`${inst.dir}/${name}`, text);
    }
    await fn(inst, dns);
  } finally {
    if (inst) await stop(inst);
    await dns.close();
  }
}

const TRANSACTION = ["EHLO x.example", "MAIL FROM:<a@example.org>", "RCPT TO:<u@mx.example.com>"];

Deno.test({
  ...opts,
  name:
    "the client hostname is looked up and forward-confirmed; reject_unknown_(reverse_)client_hostname use the outcome",
  async fn() {
    await withDns(
      "smtpd_client_restrictions = reject_unknown_reverse_client_hostname, reject_unknown_client_hostname\n" +
        "unknown_client_reject_code = 550\n",
      async (inst) => {
        const ok = await sessionFrom(inst.port, "127.0.0.5", TRANSACTION);
        assertEquals(ok[3], "250 2.1.5 Ok");
        await logHas(inst, "connect from good.example[127.0.0.5]");

        const forged = await sessionFrom(inst.port, "127.0.0.6", TRANSACTION);
        assertEquals(
          forged[3],
          "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.6]",
        );
        const none = await sessionFrom(inst.port, "127.0.0.7", TRANSACTION);
        assertEquals(
          none[3],
          "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.7]",
        );
        const ptrFails = await sessionFrom(inst.port, "127.0.0.8", TRANSACTION);
        assertEquals(
          ptrFails[3],
          "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.8]",
        );
        const forwardFails = await sessionFrom(inst.port, "127.0.0.9", TRANSACTION);
        assertEquals(
          forwardFails[3],
          "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.9]",
        );
        const log = await logHas(inst, "from unknown[127.0.0.9]");
        assertStringIncludes(
          log,
          "warning: hostname forged.example does not resolve to address 127.0.0.6\n",
        );
        assertStringIncludes(
          log,
          "warning: hostname tempfail.example does not resolve to address 127.0.0.9: " +
            "Temporary failure in name resolution",
        );
        assertStringIncludes(
          log,
          "NOQUEUE: reject: RCPT from unknown[127.0.0.6]: 550 5.7.25 Client host rejected: " +
            "cannot find your hostname, [127.0.0.6]; from=<a@example.org> " +
            "to=<u@mx.example.com> proto=ESMTP helo=<x.example>",
        );
        assertStringIncludes(log, "connect from unknown[127.0.0.7]");
      },
    );
  },
});

Deno.test({
  ...opts,
  name:
    "reject_rbl_client, reply filters, permit_dnswl_client, the reject_rhsbl_* family and rbl_reply_maps",
  async fn() {
    await withDns(
      "smtpd_relay_restrictions =\n" +
        "smtpd_recipient_restrictions = permit_dnswl_client wl.example, " +
        "reject_rbl_client zen.example=127.0.0.[2..3], reject_rbl_client custom.example, " +
        "reject_rhsbl_reverse_client rhs.example, reject_rhsbl_helo rhs.example, " +
        "reject_rhsbl_sender rhs.example, reject_rhsbl_recipient rhs.example, reject_unauth_destination\n" +
        "rbl_reply_maps = texthash:DIR/rbl_reply\n",
      async (inst) => {
        const listed = await sessionFrom(inst.port, "127.0.0.10", TRANSACTION);
        assertEquals(
          listed[3],
          "554 5.7.1 Service unavailable; Client host [127.0.0.10] blocked using zen.example; " +
            "listed at zen / see https://zen.example/",
        );
        await logHas(inst, "blocked using zen.example");
        assertStringIncludes(
          maillog(inst),
          "NOQUEUE: reject: RCPT from unknown[127.0.0.10]: 554 5.7.1 Service unavailable; " +
            "Client host [127.0.0.10] blocked using zen.example; listed at zen / see " +
            "https://zen.example/; from=<a@example.org> to=<u@mx.example.com> proto=ESMTP " +
            "helo=<x.example>",
        );
        // 127.0.0.4 does not match the filter; custom.example has its own reply.
        const custom = await sessionFrom(inst.port, "127.0.0.11", TRANSACTION);
        assertEquals(
          custom[3],
          "554 5.7.0 Go away unknown[127.0.0.11] via custom.example (Client host 127.0.0.11) to=u@mx.example.com",
        );
        // Allow-listed: accepted, but never for relaying.
        const allowed = await sessionFrom(inst.port, "127.0.0.12", [
          ...TRANSACTION,
          "RCPT TO:<u@elsewhere.example>",
        ]);
        assertEquals(allowed[3], "250 2.1.5 Ok");
        assertEquals(
          allowed[4],
          "554 5.7.1 Service unavailable; Client host [127.0.0.12] blocked using zen.example",
        );
        // A list that cannot be asked does not block.
        const failing = await sessionFrom(inst.port, "127.0.0.13", TRANSACTION);
        assertEquals(failing[3], "250 2.1.5 Ok");
        // Right-hand-side lists: reverse client name, HELO, sender and recipient domains.
        const reverse = await sessionFrom(inst.port, "127.0.0.6", TRANSACTION);
        assertEquals(
          reverse[3],
          "554 5.7.1 Service unavailable; Unverified Client host [forged.example] blocked using rhs.example",
        );
        const r = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO spam.example",
          "MAIL FROM:<a@example.org>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "EHLO x.example",
          "MAIL FROM:<bad@spam.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@example.org>",
          "RCPT TO:<u@spam.example>",
        ]);
        assertEquals(
          r[3],
          "554 5.7.1 Service unavailable; Helo command [spam.example] blocked using rhs.example",
        );
        assertEquals(
          r[7],
          "554 5.7.1 Service unavailable; Sender address [bad@spam.example] blocked using rhs.example",
        );
        assertEquals(
          r[10],
          "554 5.7.1 Service unavailable; Recipient address [u@spam.example] blocked using rhs.example",
        );
        const log = maillog(inst);
        assertStringIncludes(
          log,
          "warning: 13.0.0.127.zen.example: RBL lookup error: Host or domain name not found. " +
            "Name service error for name=13.0.0.127.zen.example type=A: Host not found, try again",
        );
      },
      {
        rbl_reply:
          "custom.example $rbl_code 5.7.0 Go away $client via $rbl_domain ($rbl_class $rbl_what) to=$recipient\n",
      },
    );
  },
});

Deno.test({
  ...opts,
  name:
    "permit_dnswl_client that cannot be asked defers a later rejection; reject_rhsbl_client uses the verified name",
  async fn() {
    await withDns(
      "smtpd_client_restrictions = permit_dnswl_client wl.example, reject_rhsbl_client rhs.example\n" +
        "smtpd_recipient_restrictions = reject_rbl_client black.example, reject_unauth_destination\n",
      async (inst) => {
        const r = await sessionFrom(inst.port, "127.0.0.13", TRANSACTION);
        assertEquals(r[3], "450 4.7.1 <127.0.0.13>: Client host rejected: Service unavailable");
        const named = await sessionFrom(inst.port, "127.0.0.5", TRANSACTION);
        assertEquals(
          named[3],
          "554 5.7.1 Service unavailable; Client host [good.example] blocked using rhs.example",
        );
      },
    );
  },
});

Deno.test({
  ...opts,
  name:
    "reject_unknown_sender_domain, reject_unknown_recipient_domain and reject_unknown_helo_hostname ask DNS for MX, A and AAAA",
  async fn() {
    await withDns(
      "smtpd_helo_restrictions = reject_unknown_helo_hostname\n" +
        "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
        "smtpd_relay_restrictions = reject_unknown_recipient_domain, permit\n",
      async (inst) => {
        const r = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO good.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@nomx.example>",
          "RCPT TO:<u@gone.example>",
          "RCPT TO:<u@nullmx.example>",
          "RCPT TO:<u@badmx.example>",
          "RCPT TO:<u@broken.example>",
          "RSET",
          "MAIL FROM:<a@gone.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@nullmx.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@broken.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@gone.invalid>",
          "RCPT TO:<u@localhost>",
        ]);
        assertEquals(r[3], "250 2.1.5 Ok");
        assertEquals(
          r[4],
          "450 4.1.2 <u@gone.example>: Recipient address rejected: Domain not found",
        );
        assertEquals(
          r[5],
          "556 5.1.10 <u@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)",
        );
        assertEquals(
          r[6],
          "450 4.1.2 <u@badmx.example>: Recipient address rejected: Malformed DNS server reply",
        );
        // A temporary failure defers only what would otherwise be accepted.
        assertEquals(
          r[7],
          "450 4.1.2 <u@broken.example>: Recipient address rejected: Domain not found",
        );
        assertEquals(
          r[10],
          "450 4.1.8 <a@gone.example>: Sender address rejected: Domain not found",
        );
        assertEquals(
          r[13],
          "550 5.7.27 <a@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
        );
        assertEquals(
          r[16],
          "450 4.1.8 <a@broken.example>: Sender address rejected: Domain not found",
        );
        assertEquals(
          r[19],
          "450 4.1.8 <a@gone.invalid>: Sender address rejected: Domain not found",
        );
        const helo = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO gone.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "EHLO broken.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "EHLO [127.0.0.7]",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
        ]);
        assertEquals(helo[3], "450 4.7.1 <gone.example>: Helo command rejected: Host not found");
        assertEquals(
          helo[7],
          "450 4.7.1 <broken.example>: Helo command rejected: Host not found",
        );
        assertEquals(helo[11], "250 2.1.5 Ok");
      },
    );
  },
});

Deno.test({
  ...opts,
  name:
    'a temporary DNS failure under defer_if_permit gives way to a later rejection; "defer" defers at once',
  async fn() {
    await withDns(
      "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
        "smtpd_relay_restrictions = reject_unauth_destination\n",
      async (inst) => {
        const r = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO x.example",
          "MAIL FROM:<a@broken.example>",
          "RCPT TO:<u@elsewhere.example>",
          "RCPT TO:<u@mx.example.com>",
        ]);
        assertEquals(r[3], "554 5.7.1 <u@elsewhere.example>: Relay access denied");
        assertEquals(
          r[4],
          "450 4.1.8 <a@broken.example>: Sender address rejected: Domain not found",
        );
      },
    );
    await withDns(
      "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
        "smtpd_relay_restrictions = reject_unauth_destination\n" +
        "unknown_address_tempfail_action = defer\n",
      async (inst) => {
        const r = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO x.example",
          "MAIL FROM:<a@broken.example>",
          "RCPT TO:<u@elsewhere.example>",
        ]);
        assertEquals(
          r[3],
          "450 4.1.8 <a@broken.example>: Sender address rejected: Domain not found",
        );
      },
    );
  },
});

Deno.test({
  ...opts,
  name:
    "check_*_mx_access, check_*_ns_access and check_*_a_access search the hosts and their addresses",
  async fn() {
    await withDns(
      "smtpd_relay_restrictions =\n" +
        "smtpd_helo_restrictions = check_helo_a_access texthash:DIR/servers\n" +
        "smtpd_sender_restrictions = check_sender_mx_access texthash:DIR/servers, " +
        "check_sender_ns_access texthash:DIR/servers\n" +
        "smtpd_recipient_restrictions = check_recipient_mx_access texthash:DIR/servers, permit\n",
      async (inst) => {
        const r = await sessionFrom(inst.port, "127.0.0.7", [
          "EHLO x.example",
          "MAIL FROM:<a@mxbad.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@viaaddr.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@sub.nsdomain.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@okmx.example>",
          "RCPT TO:<u@[192.0.2.99]>",
          "RCPT TO:<u@exists.example>",
          "RSET",
          "EHLO ahost.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
        ]);
        assertEquals(
          r[3],
          "554 5.7.1 <a@mxbad.example>: Sender address rejected: bad mail host",
        );
        assertEquals(
          r[6],
          "554 5.7.1 <a@viaaddr.example>: Sender address rejected: bad mx address",
        );
        assertEquals(
          r[9],
          "554 5.7.1 <a@sub.nsdomain.example>: Sender address rejected: evil name server",
        );
        assertEquals(r[12], "451 4.3.5 Server configuration error");
        assertEquals(
          r[13],
          "554 5.7.1 <u@[192.0.2.99]>: Recipient address rejected: bad mx address",
        );
        assertEquals(r[14], "250 2.1.5 Ok");
        assertEquals(r[18], "554 5.7.1 <ahost.example>: Helo command rejected: helo address");
        const log = maillog(inst);
        assertStringIncludes(
          log,
          "warning: restriction check_recipient_mx_access returns OK for u@okmx.example",
        );
        assert(log.includes("use DUNNO instead of OK if you want to make an exception"));
      },
      {
        servers: "mx.badhost.example REJECT bad mail host\n" +
          "192.0.2.99 REJECT bad mx address\n" +
          "ns.evil.example REJECT evil name server\n" +
          "192.0.2.77 REJECT helo address\n" +
          "mx.ok.example OK\n",
      },
    );
  },
});

Deno.test({
  ...opts,
  name: "smtpd_peername_lookup = no leaves every client unknown without asking DNS",
  async fn() {
    await withDns("smtpd_peername_lookup = no\n", async (inst, dns) => {
      const r = await sessionFrom(inst.port, "127.0.0.5", ["QUIT"]);
      assertEquals(r[1], "221 2.0.0 Bye");
      await logHas(inst, "disconnect from unknown[127.0.0.5]");
      assertEquals(dns.queries.length, 0);
    });
  },
});
