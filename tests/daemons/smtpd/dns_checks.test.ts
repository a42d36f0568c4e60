// smtpd's DNS-based restrictions against the test DNS server
// (posthorn_dns_servers points smtpd at it): the client hostname lookup and
// reject_unknown_(reverse_)client_hostname, DNS allow and block lists with
// their replies, reject_unknown_{sender,recipient}_domain and
// reject_unknown_helo_hostname with their temporary-failure actions, and the
// MX/NS/A access checks. Each case of tests/lib/dns/smtpd_cases.ts must give
// the replies and log lines the reference Postfix gave for the same sessions
// against the same zone (tests/golden/dns/, made by
// tests/lib/dns/make_smtpd_refs.ts).

import { assertEquals } from "../../assert.ts";
import { type Instance, logHas, maillog, start, stop } from "./helpers.ts";
import { TestDnsServer } from "../../lib/dns/server.ts";
import {
  comparableLog,
  DNS_CASES,
  FAILURES,
  formatReplies,
  sessionFrom,
  ZONE,
} from "../../lib/dns/smtpd_cases.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const golden = new URL("../../golden/dns/", import.meta.url).pathname;

/** Starts the DNS server, then smtpd pointed at it. */
async function withDns(
  extra: string,
  files: Record<string, string>,
  fn: (inst: Instance, dns: TestDnsServer) => Promise<void>,
): Promise<void> {
  const dns = await TestDnsServer.start(ZONE);
  for (const [name, mode] of Object.entries(FAILURES)) dns.fail(name, mode);
  let inst: Instance | undefined;
  try {
    inst = await start(`posthorn_dns_servers = ${dns.spec}\n` + extra);
    for (const [name, text] of Object.entries(files)) {
      Deno.writeTextFileSync(`${inst.dir}/${name}`, text);
    }
    await fn(inst, dns);
  } finally {
    if (inst) await stop(inst);
    await dns.close();
  }
}

for (const c of DNS_CASES) {
  Deno.test({
    ...opts,
    name: `smtpd DNS case ${c.name} replies and logs as the reference`,
    async fn() {
      const wantLog = Deno.readTextFileSync(`${golden}${c.name}.log`).trimEnd().split("\n")
        .filter((l) => l);
      await withDns(c.cf, c.files ?? {}, async (inst) => {
        const replies: string[][] = [];
        for (const s of c.sessions) replies.push(await sessionFrom(inst.port, s.from, s.lines));
        assertEquals(formatReplies(replies), Deno.readTextFileSync(`${golden}${c.name}.ref`));
        // The log is written as the sessions end: wait for the last line.
        if (wantLog.length) {
          const last = wantLog.at(-1)!.replace(/^QUEUEID: /, "");
          await logHas(inst, last);
        }
        assertEquals(comparableLog(maillog(inst)), wantLog);
      });
    },
  });
}

Deno.test({
  ...opts,
  name: "the confirmed client name is logged at connect",
  async fn() {
    await withDns("", {}, async (inst) => {
      await sessionFrom(inst.port, "127.0.0.5", ["QUIT"]);
      await sessionFrom(inst.port, "127.0.0.6", ["QUIT"]);
      await logHas(inst, "disconnect from unknown[127.0.0.6]");
      const log = maillog(inst);
      assertEquals(log.includes("connect from good.example[127.0.0.5]"), true);
      assertEquals(log.includes("connect from unknown[127.0.0.6]"), true);
    });
  },
});

Deno.test({
  ...opts,
  name: "smtpd_peername_lookup = no leaves every client unknown without asking DNS",
  async fn() {
    await withDns("smtpd_peername_lookup = no\n", {}, async (inst, dns) => {
      const r = await sessionFrom(inst.port, "127.0.0.5", ["QUIT"]);
      assertEquals(r[1], "221 2.0.0 Bye");
      await logHas(inst, "disconnect from unknown[127.0.0.5]");
      assertEquals(dns.queries.length, 0);
    });
  },
});
