// The DNS zone and the SMTP sessions of smtpd's DNS restriction tests, shared
// by tests/daemons/smtpd/dns_checks.test.ts (against Posthorn's smtpd) and
// make_smtpd_refs.ts (against the reference Postfix, whose replies and log
// lines become tests/golden/dns/). Clients connect from 127.0.0.x source
// addresses, so each has its own reverse DNS:
//   .5 confirmed name good.example     .6 PTR forged.example (A elsewhere)
//   .7 no PTR                          .8 PTR lookup fails (SERVFAIL)
//   .9 PTR tempfail.example whose A lookup fails
//   .10-.13 listed / filtered / allow-listed / list lookups failing

import net from "node:net";
import type { FailureMode, ZoneRecord } from "./server.ts";

/** The zone every case runs against. */
export const ZONE: ZoneRecord[] = [
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
  // Client access by reverse name and its addresses, allow lists by name.
  { name: "14.0.0.127.in-addr.arpa", type: "PTR", value: "forged2.example" },
  { name: "forged2.example", type: "A", value: "192.0.2.67" },
  { name: "good.example.wlrhs.example", type: "A", value: "127.0.0.2" },
  // Reply templates.
  { name: "s1.example.sndr.example", type: "A", value: "127.0.0.2" },
  { name: "s1.example.sndr.example", type: "TXT", value: "sender listed" },
  { name: "s2.example.sndr.example", type: "A", value: "127.0.0.3" },
  { name: "h1.example.badtpl.example", type: "A", value: "127.0.0.2" },
];

/** Names whose every query fails, and how. */
export const FAILURES: Record<string, FailureMode> = {
  "8.0.0.127.in-addr.arpa": "servfail",
  "tempfail.example": "servfail",
  "broken.example": "servfail",
  "13.0.0.127.zen.example": "servfail",
  "13.0.0.127.wl.example": "servfail",
};

/** One SMTP session: the client's source address and its command lines. */
export interface DnsSession {
  from: string;
  lines: string[];
}

/** A main.cf setting (DIR stands for the configuration directory), tables, and sessions. */
export interface DnsCase {
  name: string;
  cf: string;
  files?: Record<string, string>;
  sessions: DnsSession[];
}

const TRANSACTION = ["EHLO x.example", "MAIL FROM:<a@example.org>", "RCPT TO:<u@mx.example.com>"];
const plain = (from: string, more: string[] = []): DnsSession => ({
  from,
  lines: [...TRANSACTION, ...more, "QUIT"],
});

/** The cases. */
export const DNS_CASES: DnsCase[] = [
  {
    name: "client-names",
    cf: "smtpd_client_restrictions = reject_unknown_reverse_client_hostname, " +
      "reject_unknown_client_hostname\nunknown_client_reject_code = 550\n",
    sessions: ["5", "6", "7", "8", "9"].map((n) => plain(`127.0.0.${n}`)),
  },
  {
    name: "lists",
    cf: "smtpd_relay_restrictions =\n" +
      "smtpd_recipient_restrictions = permit_dnswl_client wl.example, " +
      "reject_rbl_client zen.example=127.0.0.[2..3], reject_rbl_client custom.example, " +
      "reject_rhsbl_reverse_client rhs.example, reject_rhsbl_helo rhs.example, " +
      "reject_rhsbl_sender rhs.example, reject_rhsbl_recipient rhs.example, " +
      "reject_unauth_destination\n" +
      "rbl_reply_maps = texthash:DIR/rbl_reply\n",
    files: {
      rbl_reply: "custom.example $rbl_code 5.7.0 Go away $client via $rbl_domain " +
        "($rbl_class $rbl_what) to=$recipient\n",
    },
    sessions: [
      plain("127.0.0.10"),
      plain("127.0.0.11"),
      plain("127.0.0.12", ["RCPT TO:<u@elsewhere.example>"]),
      plain("127.0.0.13"),
      plain("127.0.0.6"),
      {
        from: "127.0.0.7",
        lines: [
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
          "QUIT",
        ],
      },
    ],
  },
  {
    name: "allow-list-failure",
    cf: "smtpd_client_restrictions = permit_dnswl_client wl.example, " +
      "reject_rhsbl_client rhs.example\n" +
      "smtpd_recipient_restrictions = reject_rbl_client black.example, " +
      "reject_unauth_destination\n",
    sessions: [plain("127.0.0.13"), plain("127.0.0.5")],
  },
  {
    name: "unknown-domains",
    cf: "smtpd_helo_restrictions = reject_unknown_helo_hostname\n" +
      "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
      "smtpd_relay_restrictions = reject_unknown_recipient_domain, reject_unauth_destination\n" +
      "relay_domains = nomx.example, gone.example, nullmx.example, badmx.example, " +
      "broken.example\n",
    sessions: [
      {
        from: "127.0.0.7",
        lines: [
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
          "QUIT",
        ],
      },
      {
        from: "127.0.0.7",
        lines: [
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
          "QUIT",
        ],
      },
    ],
  },
  {
    name: "tempfail-defer-if-permit",
    cf: "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
      "smtpd_relay_restrictions = reject_unauth_destination\n",
    sessions: [{
      from: "127.0.0.7",
      lines: [
        "EHLO x.example",
        "MAIL FROM:<a@broken.example>",
        "RCPT TO:<u@elsewhere.example>",
        "RCPT TO:<u@mx.example.com>",
        "QUIT",
      ],
    }],
  },
  {
    name: "tempfail-defer",
    cf: "smtpd_sender_restrictions = reject_unknown_sender_domain\n" +
      "smtpd_relay_restrictions = reject_unauth_destination\n" +
      "unknown_address_tempfail_action = defer\n",
    sessions: [{
      from: "127.0.0.7",
      lines: [
        "EHLO x.example",
        "MAIL FROM:<a@broken.example>",
        "RCPT TO:<u@elsewhere.example>",
        "QUIT",
      ],
    }],
  },
  {
    name: "server-access",
    cf: "smtpd_relay_restrictions =\n" +
      "smtpd_helo_restrictions = check_helo_a_access texthash:DIR/servers\n" +
      "smtpd_sender_restrictions = check_sender_mx_access texthash:DIR/servers, " +
      "check_sender_ns_access texthash:DIR/servers\n" +
      "smtpd_recipient_restrictions = check_recipient_mx_access texthash:DIR/servers, " +
      "reject_unauth_destination\nrelay_domains = okmx.example, exists.example\n",
    files: {
      servers: "mx.badhost.example REJECT bad mail host\n" +
        "192.0.2.99 REJECT bad mx address\n" +
        "ns.evil.example REJECT evil name server\n" +
        "192.0.2.77 REJECT helo address\n" +
        "mx.ok.example OK\n",
    },
    sessions: [{
      from: "127.0.0.7",
      lines: [
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
        "QUIT",
      ],
    }],
  },
];

DNS_CASES.push(
  {
    name: "client-access-names",
    cf: "smtpd_client_restrictions = check_reverse_client_hostname_access texthash:DIR/rev, " +
      "check_reverse_client_hostname_a_access texthash:DIR/addrs, " +
      "permit_rhswl_client wlrhs.example, " +
      "reject_rhsbl_client rhs.example, warn_if_reject reject_rbl_client zen.example\n",
    files: {
      rev: "forged2.example REJECT no reverse\n",
      addrs: "192.0.2.66 REJECT forged address\n",
    },
    sessions: [plain("127.0.0.6"), plain("127.0.0.14"), plain("127.0.0.5"), plain("127.0.0.10")],
  },
  {
    name: "access-deferrals",
    cf: "smtpd_sender_restrictions = check_sender_access texthash:DIR/senders\n" +
      "smtpd_relay_restrictions = reject_unauth_destination\n",
    files: {
      senders: "defer.example DEFER_IF_PERMIT try later\ndir.example DEFER_IF_REJECT maybe\n",
    },
    sessions: [{
      from: "127.0.0.7",
      lines: [
        "EHLO x.example",
        "MAIL FROM:<a@defer.example>",
        "RCPT TO:<u@mx.example.com>",
        "RCPT TO:<u@elsewhere.example>",
        "RSET",
        "MAIL FROM:<a@dir.example>",
        "RCPT TO:<u@elsewhere.example>",
        "RCPT TO:<u@mx.example.com>",
        "QUIT",
      ],
    }],
  },
  {
    name: "helo-literals",
    cf: "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_unknown_helo_hostname\n",
    sessions: [{
      from: "127.0.0.7",
      lines: [
        "EHLO [999.1.1.1]",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "EHLO 192.0.2.1",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "EHLO good.example.",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "EHLO [IPv6:2001:db8::1]",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "QUIT",
      ],
    }],
  },
);

DNS_CASES.push(
  {
    name: "reply-templates",
    cf: "smtpd_sender_restrictions = reject_rhsbl_sender sndr.example, " +
      "reject_rhsbl_helo badtpl.example\n" +
      "rbl_reply_maps = texthash:DIR/replies\n",
    files: {
      replies: "sndr.example $rbl_code 5.1.1 <$sender> ($sender_name at $sender_domain): " +
        "$rbl_class listed ($rbl_what) ${rbl_reason?{why: $rbl_reason}:{no reason}} " +
        "helo=$helo_name client=$client_name/$client_address\n" +
        "badtpl.example hello there\n",
    },
    sessions: [{
      from: "127.0.0.7",
      lines: [
        "EHLO x.example",
        "MAIL FROM:<a@s1.example>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "MAIL FROM:<b@s2.example>",
        "RCPT TO:<u@mx.example.com>",
        "RSET",
        "EHLO h1.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<u@mx.example.com>",
        "QUIT",
      ],
    }],
  },
  {
    name: "client-server-access",
    cf: "smtpd_client_restrictions = check_client_ns_access texthash:DIR/cmx, " +
      "check_client_mx_access texthash:DIR/cmx\n",
    files: { cmx: "127.0.0.5 REJECT client host address\n" },
    sessions: [plain("127.0.0.5"), plain("127.0.0.7")],
  },
);

DNS_CASES.push(
  {
    name: "allow-list-failure-same-stage",
    cf: "smtpd_recipient_restrictions = permit_dnswl_client wl.example, " +
      "reject_rbl_client black.example, reject_unauth_destination\n",
    sessions: [plain("127.0.0.13")],
  },
  {
    name: "no-delay-reject",
    cf: "smtpd_delay_reject = no\n" +
      "smtpd_client_restrictions = reject_rbl_client zen.example, " +
      "reject_unknown_reverse_client_hostname\n" +
      "smtpd_helo_restrictions = reject_unknown_helo_hostname\n" +
      "smtpd_sender_restrictions = reject_unknown_sender_domain\n",
    // After a rejection at CONNECT the reference answers every command but
    // QUIT with 503 "access denied"; Posthorn does so for HELO, EHLO and MAIL.
    sessions: [
      { from: "127.0.0.10", lines: ["EHLO x.example", "MAIL FROM:<a@example.org>", "QUIT"] },
      { from: "127.0.0.7", lines: ["HELO x.example", "MAIL FROM:<a@example.org>", "QUIT"] },
      {
        from: "127.0.0.5",
        lines: [
          "EHLO broken.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
          "RSET",
          "HELO good.example",
          "MAIL FROM:<a@exists.example>",
          "RCPT TO:<u@mx.example.com>",
          "QUIT",
        ],
      },
      {
        from: "127.0.0.5",
        lines: ["HELO good.example", "MAIL FROM:<a@broken.example>", "RCPT TO:<u@mx.example.com>"],
      },
    ],
  },
);

/**
 * The log lines a comparison keeps: actions and warnings, with the program
 * prefix and pids taken out, and the queue id (or NOQUEUE) made QUEUEID: the
 * reference opens its queue file at the first accepted RCPT, Posthorn's
 * smtpd at DATA, as the other smtpd golden tests allow.
 */
export function comparableLog(log: string): string[] {
  return log.split("\n")
    .filter((l) => /smtpd\[\d+\]: /.test(l))
    .map((l) => l.replace(/^.*?smtpd\[\d+\]: /, ""))
    .filter((l) => /^(warning: |NOQUEUE: |[0-9A-Za-z]+: (reject|reject_warning): )/.test(l))
    .map((l) => l.replace(/^[0-9A-Za-z]+: (?=reject)/, "QUEUEID: "));
}

/** Runs one session from a given loopback source address: [greeting, ...replies]. */
export function sessionFrom(
  port: number,
  from: string,
  lines: string[],
  timeoutMs = 30_000,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const out: string[] = [];
    let buf = "";
    let current: string[] = [];
    let next = 0;
    const sock = net.connect({ host: "127.0.0.1", port, localAddress: from });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`session from ${from} stalled after: ${out.join(" | ")}`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("error", (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
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

/** Replies of a case's sessions as the golden .ref file holds them. */
export function formatReplies(sessions: string[][]): string {
  return sessions.map((s) => s.join("\n")).join("\n--\n") + "\n";
}
