// Restriction cases replayed against the reference smtpd and Posthorn's:
// main.cf additions (DIR is the instance folder), texthash tables written
// into the folder, and a session (sessions.ts syntax). NAME.ref holds the
// replies, NAME.log the reference's reject/warning/action log lines.

/** One restriction case. */
export interface RestrictionCase {
  name: string;
  cf: string;
  tables?: Record<string, string>;
  lines: string[];
}

const rcptAccess = `reject@MYHOST REJECT
text@MYHOST REJECT go away
defer@MYHOST DEFER
defertext@MYHOST DEFER come back later
code@MYHOST 550 5.1.1 no such user
code4@MYHOST 450 try later
codeonly@MYHOST 521
ok@elsewhere.example OK
dunno@MYHOST DUNNO
class@MYHOST strict
list@MYHOST reject_non_fqdn_sender
hold@MYHOST HOLD
discard@MYHOST DISCARD
elsewhere.example REJECT domain refused
`;

/** The cases. */
export const restrictionCases: RestrictionCase[] = [
  {
    name: "access-recipient",
    cf: "smtpd_restriction_classes = strict\nstrict = reject_non_fqdn_sender, permit\n" +
      "smtpd_recipient_restrictions = check_recipient_access texthash:DIR/rcpt_access, " +
      "permit_mynetworks, reject_unauth_destination\n",
    tables: { rcpt_access: rcptAccess },
    lines: [
      "EHLO client.example",
      "MAIL FROM:<a@localhostonly>",
      "RCPT TO:<reject@MYHOST>",
      "RCPT TO:<text@MYHOST>",
      "RCPT TO:<defer@MYHOST>",
      "RCPT TO:<defertext@MYHOST>",
      "RCPT TO:<code@MYHOST>",
      "RCPT TO:<code4@MYHOST>",
      "RCPT TO:<codeonly@MYHOST>",
      "RCPT TO:<ok@elsewhere.example>",
      "RCPT TO:<other@elsewhere.example>",
      "RCPT TO:<dunno@MYHOST>",
      "RCPT TO:<class@MYHOST>",
      "RCPT TO:<list@MYHOST>",
      "RCPT TO:<fine@MYHOST>",
      "QUIT",
    ],
  },
  {
    name: "access-sender-helo-client",
    cf: "smtpd_client_restrictions = check_client_access texthash:DIR/client_access\n" +
      "smtpd_helo_restrictions = check_helo_access texthash:DIR/helo_access\n" +
      "smtpd_sender_restrictions = check_sender_access texthash:DIR/sender_access\n",
    tables: {
      client_access: "127.0.0.2 REJECT\n",
      helo_access: "bad.helo.example REJECT no such helo\nworse.helo.example 554 5.7.0 go away\n",
      sender_access: "bad@example.org REJECT\n<> REJECT null sender refused\nexample.net DEFER\n",
    },
    lines: [
      "HELO bad.helo.example",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "HELO worse.helo.example",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "HELO good.example",
      "MAIL FROM:<bad@example.org>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "MAIL FROM:<>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "MAIL FROM:<x@sub.example.net>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "MAIL FROM:<x@example.net>",
      "RCPT TO:<u@MYHOST>",
      "QUIT",
    ],
  },
  {
    name: "helo-syntax",
    cf: "smtpd_helo_required = yes\n" +
      "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname\n" +
      "smtpd_sender_restrictions = reject_non_fqdn_sender\n" +
      "smtpd_recipient_restrictions = reject_non_fqdn_recipient\n",
    lines: [
      "MAIL FROM:<a@example.org>",
      "HELO bad_host!",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "HELO localhostonly",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "HELO [127.0.0.1]",
      "MAIL FROM:<a@localhostonly>",
      "RCPT TO:<u@MYHOST>",
      "RSET",
      "HELO good.example",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@localhostonly>",
      "RCPT TO:<u>",
      "RCPT TO:<u@MYHOST>",
      "QUIT",
    ],
  },
  {
    name: "unlisted-recipient",
    cf: "local_recipient_maps = texthash:DIR/users\n",
    tables: { users: "known 1\n" },
    lines: [
      "EHLO x",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<known@MYHOST>",
      "RCPT TO:<unknown@MYHOST>",
      "RCPT TO:<known@localhost>",
      "QUIT",
    ],
  },
  {
    name: "soft-bounce-and-warn",
    cf: "soft_bounce = yes\n" +
      "smtpd_recipient_restrictions = warn_if_reject reject_non_fqdn_recipient, " +
      "check_recipient_access texthash:DIR/rcpt_access, permit_mynetworks, reject_unauth_destination\n",
    tables: { rcpt_access: rcptAccess },
    lines: [
      "EHLO x",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u>",
      "RCPT TO:<reject@MYHOST>",
      "RCPT TO:<code@MYHOST>",
      "RCPT TO:<x@elsewhere.example>",
      "QUIT",
    ],
  },
  {
    name: "no-delay-reject",
    cf: "smtpd_delay_reject = no\n" +
      "smtpd_helo_restrictions = reject_non_fqdn_helo_hostname\n" +
      "smtpd_sender_restrictions = check_sender_access texthash:DIR/sender_access\n",
    tables: { sender_access: "bad@example.org REJECT\n" },
    lines: [
      "HELO localhostonly",
      "HELO good.example",
      "MAIL FROM:<bad@example.org>",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<u@MYHOST>",
      "QUIT",
    ],
  },
  {
    name: "relay-mynetworks",
    cf: "mynetworks = 127.0.0.0/8\n",
    lines: ["EHLO x", "MAIL FROM:<a@example.org>", "RCPT TO:<x@elsewhere.example>", "VRFY x@elsewhere.example", "QUIT"],
  },
  {
    name: "data-restrictions",
    cf: "smtpd_data_restrictions = reject_unauth_pipelining, reject\n",
    lines: ["EHLO x", "MAIL FROM:<a@example.org>", "RCPT TO:<u@MYHOST>", "DATA", "QUIT"],
  },
  {
    name: "vrfy-disabled-ehlo-discard",
    cf: "disable_vrfy_command = yes\nsmtpd_discard_ehlo_keywords = pipelining, dsn, silent-discard\n",
    lines: ["EHLO x", "VRFY u@MYHOST", "QUIT"],
  },
  {
    name: "xclient-xforward",
    cf: "smtpd_authorized_xclient_hosts = 127.0.0.1\nsmtpd_authorized_xforward_hosts = 127.0.0.0/8\n",
    lines: [
      "EHLO x",
      "XCLIENT NAME=client.example ADDR=10.1.2.3 HELO=fake.example",
      "EHLO y",
      "MAIL FROM:<a@example.org>",
      "RCPT TO:<x@elsewhere.example>",
      "XFORWARD NAME=a.example",
      "RSET",
      "XFORWARD NAME=a.example ADDR=192.0.2.1",
      "XFORWARD BOGUS=1",
      "QUIT",
    ],
  },
  {
    name: "recipient-limit",
    cf: "smtpd_recipient_limit = 2\n",
    lines: ["EHLO x", "MAIL FROM:<a@example.org>", "RCPT TO:<a@MYHOST>", "RCPT TO:<b@MYHOST>", "RCPT TO:<c@MYHOST>", "QUIT"],
  },
  {
    name: "junk-limit",
    cf: "smtpd_junk_command_limit = 2\nsmtpd_hard_error_limit = 3\n",
    lines: ["NOOP", "NOOP", "NOOP", "NOOP", "NOOP", "NOOP", "NOOP"],
  },
];
