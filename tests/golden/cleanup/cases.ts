// The messages of the cleanup reference comparison: each is dropped into a
// maildrop queue (as sendmail would), picked up and cleaned up, once by the
// reference Postfix (make_refs.ts records the queue file and log lines) and
// once by Posthorn (tests/daemons/cleanup/reference.test.ts compares).

/** One test message. */
export interface Case {
  name: string;
  sender: string;
  fullname?: string;
  recipients: string[];
  text: string;
  /** main.cf lines added for this case only. */
  cf?: string;
}

/** main.cf settings shared by every case (paths are under DIR). */
export const mainCf = `myhostname = ref.example.com
mydomain = example.com
myorigin = example.com
compatibility_level = 3.6
mydestination = ref.example.com, localhost
header_checks = regexp:DIR/header_checks
body_checks = regexp:DIR/body_checks
canonical_maps = texthash:DIR/canonical
virtual_alias_maps = texthash:DIR/virtual
masquerade_domains = !keep.example.com, example.com
masquerade_exceptions = root
sender_bcc_maps = texthash:DIR/sender_bcc
always_bcc = archive@example.com
`;

/** The table files, by name. */
export const tables: Record<string, string> = {
  header_checks: `/^Subject: reject-me/ REJECT
/^Subject: reject-text/ REJECT go away
/^Subject: hold-me/ HOLD
/^Subject: warn-me/ WARN watch this
/^Subject: prepend-me/ PREPEND X-Tag: yes
/^Subject: replace-me/ REPLACE Subject: replaced
/^Subject: info-me/ INFO noted
/^Subject: discard-me/ DISCARD
/^Subject: redirect-me/ REDIRECT trap@example.com
/^Subject: filter-me/ FILTER smtp:[127.0.0.1]:10025
/^Subject: bcc-me/ BCC audit@example.com
/^X-Ignore:/ IGNORE
/^X-Strip:/ STRIP
/^Subject: inner-prepend/ PREPEND X-Inner: yes
/^From: drop@/ IGNORE
/^Subject: prepend-from/ PREPEND From: prepended@example.com
/^Subject: replace-to/ REPLACE To: bare-replaced
/^X-Body-Replace:/ PREPEND X-Seen: yes
/^Content-Type: text.x-warn/ WARN mime warned
`,
  body_checks: `/^body-reject/ REJECT
/^body-warn/ WARN body warned
/^body-replace/ REPLACE replaced body line
/^body-prepend/ PREPEND prepended body line
/^body-ignore/ IGNORE
`,
  canonical: `alice@example.com Alice.Smith@example.com
bob@example.com robert@example.com
`,
  virtual: `team@example.com ann@example.com, lead@example.com
lead@example.com lead@example.com, boss@example.com
loop1@example.com loop2@example.com
loop2@example.com loop3@example.com
loop3@example.com loop4@example.com
loop4@example.com loop5@example.com
`,
  sender_bcc: `alice@example.com sent@example.com
`,
};

const body = "\nHello.\n";

/** The messages. */
export const cases: Case[] = [
  {
    name: "rewrite",
    sender: "alice@example.com",
    fullname: "Alice Example",
    recipients: ["bob@example.com", "team@example.com"],
    text: "From: Alice Example <alice@example.com>\nTo: bob@example.com, Carol <carol>,\n" +
      "  dave (Dave D)\nCc: Friends: x@sub.example.com, y@keep.example.com;\n" +
      "Subject: rewrite\nMessage-ID: <r1@example.com>\nDate: Tue, 24 Nov 2026 15:00:00 +0000\n" +
      body,
  },
  {
    name: "fullname",
    sender: "u1@host.example.com",
    fullname: 'Jo "Q" Public, Jr.',
    recipients: ["root@host.example.com"],
    text: "Subject: fullname\n" + body,
  },
  {
    name: "bare",
    sender: "u2",
    recipients: ["u3"],
    text: "To: u3, <@r1,@r2:u4@x.example.org>\nReply-To: u2\nSubject: bare\n" + body,
  },
  {
    name: "resent",
    sender: "u5@example.org",
    recipients: ["u6@example.org"],
    text: "From: a@example.org\nTo: b@example.org\nResent-To: u6@example.org\nSubject: resent\n" +
      "Date: Tue, 24 Nov 2026 15:00:00 +0000\nMessage-ID: <x@y>\n" + body,
  },
  {
    name: "removed",
    sender: "u7@example.org",
    recipients: ["u8@example.org"],
    text: "Bcc: secret@example.org\nReturn-Path: <x@y>\nContent-Length: 10\n" +
      "X-Ignore: gone\nX-Strip: stripped\nSubject: removed\n" + body,
  },
  ...[
    "reject-me",
    "reject-text",
    "hold-me",
    "warn-me",
    "prepend-me",
    "replace-me",
    "info-me",
    "discard-me",
    "redirect-me",
    "filter-me",
    "bcc-me",
  ].map((subject) => ({
    name: `action-${subject}`,
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: `From: u9@example.org\nTo: u10@example.org\nSubject: ${subject}\n` + body,
  })),
  {
    name: "body-warn",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: b\n\nbody-warn here\nmore\n",
  },
  {
    name: "body-reject",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: b\n\nfirst\nbody-reject here\n",
  },
  {
    name: "strays",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: cr\rin header\n\nnul\0byte and cr\rin body\n",
  },
  {
    name: "mime-nested",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: [
      "Subject: outer",
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="b1"',
      "",
      "preamble",
      "--b1",
      "Content-Type: text/x-warn",
      "",
      "part one",
      "body-warn in a part",
      "--b1",
      "Content-Type: message/rfc822",
      "",
      "Subject: inner-prepend",
      "From: inner@example.net",
      "",
      "inner body",
      "--b1--",
      "epilogue",
      "",
    ].join("\n"),
  },
  {
    name: "strict-8bit-body",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: 8bit\n\ncaf\u00e9\n",
    cf: "strict_8bitmime_body = yes",
  },
  {
    name: "strict-7bit-headers",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: caf\u00e9\n\nbody\n",
    cf: "strict_7bit_headers = yes",
  },
  {
    name: "strict-encoding",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Content-Type: multipart/mixed; boundary=q\nContent-Transfer-Encoding: base64\n\n" +
      "--q\n\nx\n--q--\n",
    cf: "strict_mime_encoding_domain = yes",
  },
  {
    name: "nesting",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: n\nContent-Type: multipart/mixed; boundary=a\n\n--a\n" +
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=c\n\n" +
      "--c\n\nleaf\n--c--\n--b--\n--a--\n",
    cf: "mime_nesting_limit = 2",
  },
  {
    name: "size-limit",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: big\n\n" + ("0123456789".repeat(7) + "\n").repeat(30),
    cf: "message_size_limit = 1000",
  },
  {
    name: "hops",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Received: from a by b\nReceived: from b by c\nReceived: from c by d\n" +
      "Received: from d by e\nSubject: hops\n" + body,
    cf: "hopcount_limit = 3",
  },
  {
    name: "virtual-recursion",
    sender: "u9@example.org",
    recipients: ["loop1@example.com"],
    text: "Subject: loop\n" + body,
    cf: "virtual_alias_recursion_limit = 2",
  },
  {
    name: "virtual-expansion",
    sender: "u9@example.org",
    recipients: ["team@example.com"],
    text: "Subject: expansion\n" + body,
    cf: "virtual_alias_expansion_limit = 2",
  },
  {
    name: "header-size",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "X-Long: start\n" + ("\t" + "z".repeat(60) + "\n").repeat(10) + "Subject: hs\n" + body,
    cf: "header_size_limit = 300",
  },
  {
    name: "null-sender",
    sender: "",
    recipients: ["u10@example.org"],
    text: "Subject: bounce-ish\n" + body,
  },
  {
    name: "duplicates",
    sender: "u9@example.org",
    recipients: ["u10@example.org", "u10@example.org", "U10@example.org", "u11"],
    text: "Subject: dups\n" + body,
  },
  {
    name: "no-body",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: only headers\nX-Last: 1\n",
  },
  {
    name: "long-header",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: " + "s".repeat(2100) + "\nX-After: 1\n\n" + "b".repeat(4100) + "\n",
  },
  {
    name: "no-recipients",
    sender: "u9@example.org",
    recipients: [],
    text: "Subject: nobody\n" + body,
  },
  {
    name: "parse-edge",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: [
      "To: foo bar",
      "To: Joe <joe",
      "To: undisclosed-recipients:;",
      "To: a1, , a2",
      'To: "Doe, John" <jd>',
      "To: <@r1,@r2:u1@x.example.org>",
      "To: u2@[192.0.2.1]",
      'To: "quoted local"@example.org',
      "To: joe (comment) <j1>",
      "To: @x.example.org",
      "To: <>",
      "To: Group: g1, g2; g3",
      "To: c1@x.example.org (c1) (c2)",
      "To: u%v.example.org, h.example.org!u3",
      "To: John Q. Public <jqp>",
      "To: j\u00f6rg",
      "To: a.b.",
      'To: "a b" c <d>',
      "To: x <y> z",
      "To: (only a comment)",
      "To: trailing@",
      "Subject: parse",
      "",
      "x",
      "",
    ].join("\n"),
  },
  {
    name: "8bit-undeclared",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: 8bit\nMIME-Version: 1.0\n\ncaf\u00e9\n",
  },
  {
    name: "actions-and-missing-headers",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "From: drop@example.org\nSubject: prepend-from\nTo: u10@example.org\n" +
      "Cc: nobody\nSubject: replace-to\n\nbody-replace this\nbody-prepend that\nbody-ignore me\nend\n",
  },
  {
    name: "reject-characters",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject: x\n\nfine\nnul\u0000here\nbell\u0007too\n",
    cf: "message_reject_characters = \\0\\007",
  },
  {
    name: "strip-characters",
    sender: "u9@example.org",
    recipients: ["u10@example.org"],
    text: "Subject:\tx\n\ntab\there\n",
    cf: "message_strip_characters = \\t",
  },
];
