// Regenerates tests/golden/dns/NAME.ref and NAME.log from the reference
// Postfix for each case in smtpd_cases.ts. Run as root:
//   deno run -A --unstable-net tests/lib/dns/make_smtpd_refs.ts
// It re-runs itself in new network and mount namespaces (unshare(1)), where
// the test DNS server can answer on 127.0.0.1:53 and a private resolv.conf
// is bind-mounted over /etc/resolv.conf, so the reference's C-library
// resolver asks the test server; nothing outside the namespaces changes.

import { baseCf } from "../../daemons/smtpd/helpers.ts";
import {
  comparableLog,
  DNS_CASES,
  FAILURES,
  formatReplies,
  sessionFrom,
  ZONE,
} from "./smtpd_cases.ts";
import { TestDnsServer } from "./server.ts";

const here = new URL(".", import.meta.url).pathname;
const golden = new URL("../../golden/dns/", import.meta.url).pathname;
const PORT = 2525;

function run(cmd: string, args: string[]): void {
  const out = new Deno.Command(cmd, { args, stdout: "inherit", stderr: "inherit" }).outputSync();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

const MASTER_CF = [
  `127.0.0.1:${PORT} inet n - n - - smtpd`,
  "pickup unix n - n 60 1 pickup",
  "cleanup unix n - n - 0 cleanup",
  "qmgr unix n - n 300 1 qmgr",
  "rewrite unix - - n - - trivial-rewrite",
  "bounce unix - - n - 0 bounce",
  "defer unix - - n - 0 bounce",
  "trace unix - - n - 0 bounce",
  "verify unix - - n - 1 verify",
  "flush unix n - n 1000? 0 flush",
  "proxymap unix - - n - - proxymap",
  "smtp unix - - n - - smtp",
  "relay unix - - n - - smtp",
  "showq unix n - n - - showq",
  "error unix - - n - - error",
  "retry unix - - n - - error",
  "discard unix - - n - - discard",
  "local unix - n n - - local",
  "anvil unix - - n - 1 anvil",
  "scache unix - - n - 1 scache",
  "postlog unix-dgram n - n - 1 postlogd",
].join("\n") + "\n";

async function inside(): Promise<void> {
  run("ip", ["link", "set", "lo", "up"]);
  const dir = await Deno.makeTempDir({ prefix: "dnsref-" });
  Deno.chmodSync(dir, 0o755);
  Deno.writeTextFileSync(
    `${dir}/resolv.conf`,
    "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
  );
  run("mount", ["--bind", `${dir}/resolv.conf`, "/etc/resolv.conf"]);
  const dns = await TestDnsServer.start(ZONE, { port: 53 });
  for (const [name, mode] of Object.entries(FAILURES)) dns.fail(name, mode);
  Deno.mkdirSync(`${dir}/queue`);
  Deno.mkdirSync(`${dir}/data`);
  run("chown", ["postfix", `${dir}/data`]);
  Deno.writeTextFileSync(`${dir}/master.cf`, MASTER_CF);
  Deno.writeTextFileSync(`${dir}/maillog`, "");
  let started = false;
  try {
    const wanted = new Set(Deno.args);
    for (const c of DNS_CASES) {
      if (wanted.size && !wanted.has(c.name)) continue;
      for (const [name, text] of Object.entries(c.files ?? {})) {
        Deno.writeTextFileSync(`${dir}/${name}`, text);
      }
      Deno.writeTextFileSync(
        `${dir}/main.cf`,
        `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\nmail_owner = postfix\n` +
          `setgid_group = postdrop\nmaillog_file = ${dir}/maillog\nmaillog_file_prefixes = /tmp\n` +
          baseCf.replace("hash_queue_names =\n", "") + c.cf.replaceAll("DIR", dir),
      );
      run("postfix", ["-c", dir, started ? "reload" : "start"]);
      started = true;
      await new Promise((r) => setTimeout(r, 1500));
      const offset = Deno.readTextFileSync(`${dir}/maillog`).length;
      const replies: string[][] = [];
      for (const s of c.sessions) replies.push(await sessionFrom(PORT, s.from, s.lines));
      await new Promise((r) => setTimeout(r, 1000));
      const log = Deno.readTextFileSync(`${dir}/maillog`).slice(offset);
      Deno.writeTextFileSync(`${golden}${c.name}.ref`, formatReplies(replies));
      Deno.writeTextFileSync(`${golden}${c.name}.log`, comparableLog(log).join("\n") + "\n");
      console.log(`${c.name}: ${replies.length} sessions`);
    }
  } catch (err) {
    console.error(Deno.readTextFileSync(`${dir}/maillog`).split("\n").slice(-40).join("\n"));
    throw err;
  } finally {
    if (started) run("postfix", ["-c", dir, "stop"]);
    await dns.close();
    run("umount", ["/etc/resolv.conf"]);
    await Deno.remove(dir, { recursive: true });
  }
}

if (Deno.env.get("POSTHORN_DNS_REF_INSIDE")) {
  await inside();
} else {
  Deno.mkdirSync(golden, { recursive: true });
  const out = new Deno.Command("unshare", {
    args: [
      "--mount",
      "--net",
      "--propagation",
      "private",
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-net",
      `${here}make_smtpd_refs.ts`,
      ...Deno.args,
    ],
    env: { POSTHORN_DNS_REF_INSIDE: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  Deno.exit(out.code);
}
