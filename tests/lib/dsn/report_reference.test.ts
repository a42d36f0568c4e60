// Notices built by lib/dsn/report.ts against the reference's own: failure,
// delay and success notices made by Postfix 3.7's bounce daemon (the
// golden files, from postcat -bh of the queued notices). The lines the
// reference's cleanup adds (Received, Message-Id, the qualified
// MAILER-DAEMON address) are taken out before comparing; everything the
// bounce daemon writes must match byte for byte.

import { assertEquals } from "../../assert.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { buildReport, type ReportInput } from "../../../lib/dsn/report.ts";
import { defaultTemplates, expandTemplate } from "../../../daemons/bounce/templates.ts";

const golden = new URL("../../golden/bounce/", import.meta.url).pathname;

/** The reference notice, and the input that should reproduce it. */
function fromReference(file: string): { expected: string; input: ReportInput } {
  const text = Deno.readTextFileSync(`${golden}${file}`);
  const lines = text.replace(/\n$/, "").split("\n");
  const get = (name: string) =>
    lines.find((l) => l.startsWith(name + ": "))!.slice(name.length + 2);
  const date = (v: string) => new Date(Date.parse(v.replace(/ \(.*\)$/, "")));
  const subject = get("Subject");
  const kind = subject.startsWith("Delayed")
    ? "delay"
    : subject.startsWith("Successful")
    ? "success"
    : "failure";
  const boundary = /boundary="([^"]+)"/.exec(text)![1];
  const diag = get("Diagnostic-Code").replace(/^X-Postfix; /, "");
  const address = get("Final-Recipient").replace(/^rfc822; /, "");
  const rp = lines.findIndex((l) => l.startsWith("Return-Path: "));
  const blank = lines.indexOf("", rp);
  const full = lines.includes("Content-Type: message/rfc822");
  const end = lines.lastIndexOf(`--${boundary}--`);
  const arrival = date(get("Arrival-Date"));
  const config = configFromText("/nonexistent", "myhostname = mx.example.com\n");
  const input: ReportInput = {
    kind,
    template: expandTemplate(defaultTemplates[kind], config),
    postmasterCopy: subject.startsWith("Postmaster"),
    queueId: get("X-Postfix-Queue-ID"),
    myhostname: "mx.example.com",
    sender: get("X-Postfix-Sender").replace(/^rfc822; /, ""),
    to: get("To"),
    arrival,
    now: date(get("Date")),
    envid: "",
    retryUntil: kind === "delay" ? new Date(arrival.getTime() + 5 * 86400_000) : undefined,
    recipients: [{
      address,
      origRcpt: address,
      dsnOrcpt: get("Original-Recipient"),
      status: get("Status"),
      action: get("Action"),
      reason: diag,
      diagType: "X-Postfix",
      diagText: diag,
      mtaType: "",
      mtaName: "",
    }],
    original: {
      headers: lines.slice(rp + 1, blank),
      body: full ? lines.slice(blank + 1, end - 1) : [],
    },
    returnBody: full,
    boundary,
    eightBit: true,
  };
  // What the reference's cleanup added: its Received header and Message-Id,
  // and myorigin on the MAILER-DAEMON address.
  const headerEnd = lines.indexOf("");
  const expected = lines
    .filter((l, i) => !(i < headerEnd && (i < 2 || l.startsWith("Message-Id: "))))
    .map((l) => l.replace("<MAILER-DAEMON@example.com>", "<MAILER-DAEMON>"));
  return { expected: expected.join("\n"), input };
}

const utc = new Date().getTimezoneOffset() === 0;

for (
  const [file, what] of [
    ["reference-failure.txt", "non-delivery notice"],
    ["reference-delay.txt", "delay notice"],
    ["reference-success.txt", "success notice"],
    ["reference-postmaster.txt", "postmaster copy of a non-delivery notice"],
  ]
) {
  Deno.test({
    name: `buildReport() writes the ${what} as the reference's bounce daemon does`,
    ignore: !utc, // The reference's dates are in UTC.
    fn() {
      const { expected, input } = fromReference(file);
      assertEquals(buildReport(input).join("\n"), expected);
    },
  });
}
