// Real SMTP clients against smtpd: swaks (pipelining and not) and
// Python's smtplib, each message ending up queued.

import { assert, assertStringIncludes } from "../../assert.ts";
import { incoming, start, stop } from "./helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function have(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output()).success;
  } catch {
    return false;
  }
}

async function run(
  cmd: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string }> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (stdin) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await p.output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr),
  };
}

Deno.test({
  ...opts,
  name: "swaks and smtplib deliver messages that get queued",
  ignore: !(await have("swaks")) || !(await have("python3")),
  async fn() {
    const inst = await start();
    try {
      const common = [
        "--server",
        "127.0.0.1",
        "--port",
        String(inst.port),
        "--from",
        "a@example.org",
        "--to",
        "u@mx.example.com",
        "--ehlo",
        "client.example",
      ];
      const plain = await run("swaks", [...common, "--body", "plain swaks"]);
      assertStringIncludes(plain.out, "250 2.0.0 Ok: queued as");
      const piped = await run("swaks", [...common, "--pipeline", "--body", "pipelined swaks"]);
      assertStringIncludes(piped.out, "250 2.0.0 Ok: queued as");
      const chunked = await run("swaks", [...common, "--pipeline", "--body", "."]);
      assert(chunked.code === 0, chunked.out);
      const py = await run(
        "python3",
        ["-"],
        `
import smtplib
s = smtplib.SMTP("127.0.0.1", ${inst.port})
s.ehlo("client.example")
assert s.has_extn("pipelining") and s.has_extn("dsn") and s.has_extn("chunking")
r = s.sendmail("a@example.org", ["u@mx.example.com", "x@elsewhere.example"],
  "Subject: smtplib\\r\\n\\r\\n.leading dot\\r\\n", rcpt_options=["NOTIFY=FAILURE"])
print("refused", r)
try:
  s.sendmail("a@example.org", ["x@elsewhere.example"], "Subject: no\\r\\n\\r\\nx\\r\\n")
except smtplib.SMTPRecipientsRefused as e:
  print("all refused", list(e.recipients.values())[0][0])
s.quit()
`,
      );
      assert(py.code === 0, py.out);
      assertStringIncludes(
        py.out,
        "refused {'x@elsewhere.example': (454, b'4.7.1 <x@elsewhere.example>: Relay access denied')}",
      );
      assertStringIncludes(py.out, "all refused 454");
      await new Promise((r) => setTimeout(r, 200));
      assert(incoming(inst).length >= 4, String(incoming(inst).length));
    } finally {
      await stop(inst);
    }
  },
});

Deno.test({
  ...opts,
  name: "smtpd -S runs one session on standard input and output (sendmail -bs)",
  async fn() {
    const inst = await start();
    try {
      const script = `${inst.dir}/stdio.ts`;
      Deno.writeTextFileSync(
        script,
        `import { main } from "${
          new URL("../../../daemons/smtpd/mod.ts", import.meta.url).href
        }";\n` +
          `Deno.exit(await main(["-S"], { name: "smtpd", program: "smtpd" }));\n`,
      );
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-ffi", "--unstable-net", script],
        env: { MAIL_CONFIG: inst.dir },
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(
        new TextEncoder().encode(
          "EHLO local\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@mx.example.com>\r\nDATA\r\n" +
            "Subject: bs\r\n\r\nhi\r\n.\r\nQUIT\r\n",
        ),
      );
      await w.close();
      const out = new TextDecoder().decode((await p.output()).stdout);
      assertStringIncludes(out, "220 mx.example.com ESMTP Postfix\r\n");
      assertStringIncludes(out, "250 2.0.0 Ok: queued as ");
      assertStringIncludes(out, "221 2.0.0 Bye\r\n");
    } finally {
      await stop(inst);
    }
  },
});
