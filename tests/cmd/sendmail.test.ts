import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { projectRoot, runProgram } from "../run.ts";
import { decodeRecords } from "../../lib/queue/record.ts";
import { submitterLogin } from "../../lib/queue/submitter.ts";
import {
  describeRecords,
  maildropFiles,
  makeInstance,
  onlyMaildropRecords,
  removeInstance,
  runFeeding,
} from "./queue_instance.ts";

const golden = new URL("../golden/queue/", import.meta.url);
const enc = new TextEncoder();

/** Cases the reference's sendmail wrote (tests/golden/queue/NAME.maildrop from NAME.eml). */
const referenceCases: [string, string[]][] = [
  ["simple", [
    "-f",
    "alice@example.com",
    "-F",
    "Alice Example",
    "bob@example.com",
    "carol@example.com",
  ]],
  ["dsn8bit", [
    "-N",
    "success,delay",
    "-R",
    "hdrs",
    "-V",
    "envid-42",
    "-B",
    "8BITMIME",
    "-f",
    "bob@example.com",
    "dave@example.com",
  ]],
  ["longline", ["-f", "root@example.com", "erin@example.com"]],
  ["noheaders", ["-i", "-f", "root@example.com", "kim@example.com"]],
  ["tflag", ["-t", "-f", "frank@example.com"]],
];

for (const [name, args] of referenceCases) {
  Deno.test(`sendmail ${args.join(" ")} writes the records the reference's sendmail writes (${name})`, async () => {
    const inst = makeInstance();
    const input = Deno.readFileSync(new URL(`${name}.eml`, golden));
    // NAME gives the full name the reference took from root's password entry.
    const r = await runProgram("sendmail", args, {
      stdin: input,
      env: { ...inst.env, NAME: "root" },
    });
    assertEquals(r.code, 0, r.stderr);
    const expected = describeRecords(
      decodeRecords(Deno.readFileSync(new URL(`${name}.maildrop`, golden))),
    )
      // Posthorn's sendmail -t drops the Bcc header itself; the reference leaves it to cleanup.
      .filter((r) => !r.startsWith("N:Bcc:"));
    assertEquals(describeRecords(onlyMaildropRecords(inst)), expected);
    removeInstance(inst);
  });
}

Deno.test("sendmail keeps NUL bytes and bare CRs as the reference does", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-f", "a@example.com", "b@example.com"], {
    stdin: "Subject: nul\n\nab\0cd\rx\r\ny\n",
    env: { ...inst.env, NAME: "root" },
  });
  assertEquals(r.code, 0, r.stderr);
  const expected = describeRecords(
    decodeRecords(Deno.readFileSync(new URL("nulcr.maildrop", golden))),
  );
  assertEquals(describeRecords(onlyMaildropRecords(inst)), expected);
  removeInstance(inst);
});

Deno.test("sendmail -bv queues the reference's probe and says where the report goes", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-bv", "x@y"], {
    stdin: "",
    env: { ...inst.env, NAME: "root" },
  });
  assertEquals(r.code, 0, r.stderr);
  const records = describeRecords(onlyMaildropRecords(inst));
  const expected = describeRecords(
    decodeRecords(Deno.readFileSync(new URL("probe.maildrop", golden))),
  );
  // The sender is the login name of whoever runs the test.
  assertEquals(
    records.filter((x) => !/^S:|^N:From:/.test(x)),
    expected.filter((x) => !/^S:|^N:From:/.test(x)),
  );
  assertStringIncludes(r.stdout, "Mail Delivery Status Report will be mailed to <");
  removeInstance(inst);
});

Deno.test("sendmail without -i stops at a lone dot; with -i or -oi the dot is text", async () => {
  for (
    const [flags, body] of [[[], ["N:a"]], [["-i"], ["N:a", "N:.", "N:b"]], [["-oi"], [
      "N:a",
      "N:.",
      "N:b",
    ]]] as const
  ) {
    const inst = makeInstance();
    const r = await runProgram("sendmail", [...flags, "-f", "s@x", "r@x"], {
      stdin: "a\n.\nb\n",
      env: inst.env,
    });
    assertEquals(r.code, 0, r.stderr);
    const text = describeRecords(onlyMaildropRecords(inst)).filter((x) => x.startsWith("N:"));
    assertEquals(text, [...body], flags.join(" "));
    removeInstance(inst);
  }
});

Deno.test("sendmail -f '<>' submits with the null sender; -r is -f", async () => {
  for (const args of [["-f", "<>"], ["-r", ""]]) {
    const inst = makeInstance();
    const r = await runProgram("sendmail", [...args, "r@x"], { stdin: "x\n", env: inst.env });
    assertEquals(r.code, 0, r.stderr);
    assert(describeRecords(onlyMaildropRecords(inst)).includes("S:"), args.join(" "));
    removeInstance(inst);
  }
});

Deno.test("sendmail -N, -R and -V are stored as the DSN attributes; bad values are ignored with a warning", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-N", "bogus", "-R", "odd", "-f", "s@x", "r@x"], {
    stdin: "x\n",
    env: inst.env,
  });
  assertEquals(r.code, 0);
  assertStringIncludes(
    r.stderr,
    'sendmail: warning: unknown DSN NOTIFY command value "bogus" in "bogus"',
  );
  assertStringIncludes(r.stderr, "sendmail: warning: bad -R option value -- ignored");
  const records = describeRecords(onlyMaildropRecords(inst));
  assert(!records.some((x) => x.startsWith("A:notify_flags") || x.startsWith("A:ret_flags")));
  removeInstance(inst);
});

Deno.test("sendmail without recipients is refused with Postfix's message and status 75", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-f", "a@b.c"], { stdin: "x\n", env: inst.env });
  assertEquals(r.code, 75);
  assertStringIncludes(r.stderr, "sendmail: fatal: a@b.c(");
  assertStringIncludes(
    r.stderr,
    "): Recipient addresses must be specified on the command line or via the -t option",
  );
  assertEquals(maildropFiles(inst), []);
  const t = await runProgram("sendmail", ["-t", "-f", "a@b.c"], {
    stdin: "Subject: x\n\nbody\n",
    env: inst.env,
  });
  assertEquals(t.code, 75);
  assertStringIncludes(t.stderr, "No recipient addresses found in message header");
  assertEquals(maildropFiles(inst), []);
  removeInstance(inst);
});

Deno.test("sendmail refuses a message over message_size_limit, logs it and leaves nothing queued", async () => {
  const inst = makeInstance();
  const line = "a".repeat(79) + "\n";
  const body = enc.encode("Subject: big\n\n" + line.repeat((50 * 1024 * 1024) / 80));
  const r = await runFeeding("sendmail", ["-f", "a@example.com", "b@example.com"], body, inst.env);
  assertEquals(r.code, 75);
  assertStringIncludes(r.stderr, "warning: uid=");
  assertStringIncludes(r.stderr, ": File too large");
  assertStringIncludes(r.stderr, "sendmail: fatal: a@example.com(");
  assertStringIncludes(r.stderr, "): message file too big");
  assertStringIncludes(Deno.readTextFileSync(inst.maillog), "postfix/sendmail[");
  assertEquals(maildropFiles(inst), []);
  removeInstance(inst);
});

Deno.test("sendmail queues a 50 MB body when message_size_limit allows it", async () => {
  const inst = makeInstance("message_size_limit = 0\n");
  const body = new Uint8Array(50 * 1024 * 1024).fill(0x62);
  for (let i = 99; i < body.length; i += 100) body[i] = 10;
  const r = await runProgram("sendmail", ["-f", "a@x", "b@x"], { stdin: body, env: inst.env });
  assertEquals(r.code, 0, r.stderr);
  const records = onlyMaildropRecords(inst);
  assertEquals(records.filter((x) => x.type === "N").length, body.length / 100);
  assertEquals(records[records.length - 1].type, "E");
  removeInstance(inst);
});

Deno.test("sendmail: standard input closed early still queues what arrived, last line included", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-f", "a@x", "b@x"], {
    stdin: "Subject: cut\n\npartial li",
    env: inst.env,
  });
  assertEquals(r.code, 0, r.stderr);
  const text = describeRecords(onlyMaildropRecords(inst));
  assertEquals(text.slice(-3), ["N:partial li", "X:", "E:"]);
  removeInstance(inst);
});

Deno.test("sendmail's queue file is complete (owner execute bit) and readable by the mail group only", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-f", "a@x", "b@x"], { stdin: "x\n", env: inst.env });
  assertEquals(r.code, 0, r.stderr);
  const [name] = maildropFiles(inst);
  assertEquals(Deno.statSync(`${inst.queueDir}/maildrop/${name}`).mode! & 0o777, 0o740);
  removeInstance(inst);
});

Deno.test("sendmail wakes pickup with W on its fifo", async () => {
  const inst = makeInstance();
  const fifo = `${inst.queueDir}/public/pickup`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const reader = Deno.open(fifo, { read: true });
  const sent = runProgram("sendmail", ["-f", "a@x", "b@x"], { stdin: "x\n", env: inst.env });
  const file = await reader;
  const buf = new Uint8Array(8);
  const n = await file.read(buf);
  file.close();
  assertEquals((await sent).code, 0);
  assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "W");
  removeInstance(inst);
});

Deno.test("sendmail modes that are refused or need a running system fail clearly", async () => {
  const inst = makeInstance();
  const cases: [string, string[], number, string][] = [
    ["sendmail", ["-bd"], 75, "daemon mode (-bd) is not supported"],
    ["sendmail", ["-q"], 69, "Cannot flush mail queue - mail system is down"],
    ["sendmail", ["-qRexample.com"], 69, "Cannot flush mail queue - mail system is down"],
    ["sendmail", ["-qIABCDEF"], 69, "Cannot flush mail queue - mail system is down"],
    ["sendmail", ["-qSexample.com"], 75, "-qS is not implemented"],
    ["sendmail", ["-bz", "x@y"], 75, "sendmail: fatal: unsupported: -bz"],
    ["sendmail", ["-z"], 75, "sendmail: fatal: usage: sendmail [options]"],
    ["sendmail", ["-B", "9BIT", "x@y"], 75, "sendmail: fatal: -B option needs 8BITMIME or 7BIT"],
    [
      "sendmail",
      ["-C", `${inst.dir}/nonexist`, "x@y"],
      75,
      `open ${inst.dir}/nonexist/main.cf: No such file or directory`,
    ],
  ];
  for (const [name, args, code, text] of cases) {
    const r = await runProgram(name, args, { stdin: "", env: inst.env });
    assertEquals(r.code, code, `${name} ${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, text);
  }
  assertEquals(maildropFiles(inst), []);
  removeInstance(inst);
});

Deno.test("sendmail -bs runs an SMTP session on standard input and output", async () => {
  const inst = makeInstance();
  const r = await runProgram("sendmail", ["-bs"], {
    stdin: "EHLO client.example\r\nQUIT\r\n",
    env: {
      ...inst.env,
      POSTHORN_LAUNCHER:
        `${Deno.execPath()} run -A --unstable-ffi --unstable-net ${projectRoot}mod.ts`,
    },
  });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "220 ");
  assertStringIncludes(r.stdout, "250-PIPELINING");
  assertStringIncludes(r.stdout, "221 2.0.0 Bye");
  removeInstance(inst);
});

Deno.test("mailq and sendmail -bp list the queue as postqueue -p does", async () => {
  const inst = makeInstance();
  for (const [name, args] of [["mailq", []], ["sendmail", ["-bp"]]] as [string, string[]][]) {
    const r = await runProgram(name, args, { stdin: "", env: inst.env });
    assertEquals(r.code, 0, `${name} ${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout, "Mail queue is empty\n");
    assertStringIncludes(r.stderr, "Mail system is down -- accessing queue directly");
  }
  const sent = await runProgram("sendmail", ["-f", "a@example.com", "b@example.com"], {
    stdin: "Subject: x\n\nbody\n",
    env: inst.env,
  });
  assertEquals(sent.code, 0, sent.stderr);
  const listed = await runProgram("mailq", [], { stdin: "", env: inst.env });
  assertEquals(listed.code, 0, listed.stderr);
  assertStringIncludes(listed.stdout, "a@example.com");
  assertStringIncludes(listed.stdout, "b@example.com");
  assertStringIncludes(listed.stdout, "-- 0 Kbytes in 1 Request.");
  removeInstance(inst);
});

Deno.test("newaliases and sendmail -bi rebuild the alias database", async () => {
  const inst = makeInstance();
  Deno.writeTextFileSync(`${inst.dir}/aliases`, "postmaster: root\n");
  Deno.writeTextFileSync(
    `${inst.configDir}/main.cf`,
    `alias_maps = hash:${inst.dir}/aliases\nalias_database = hash:${inst.dir}/aliases\n`,
    { append: true },
  );
  for (const [name, args] of [["newaliases", []], ["sendmail", ["-bi"]]] as const) {
    try {
      Deno.removeSync(`${inst.dir}/aliases.db`);
    } catch { /* first round */ }
    const r = await runProgram(name, [...args], { env: inst.env });
    assertEquals(r.code, 0, r.stderr);
    assert(Deno.statSync(`${inst.dir}/aliases.db`).isFile, name);
  }
  removeInstance(inst);
});

Deno.test("sendmail and postdrop enforce authorized_submit_users with Postfix's message", async () => {
  const login = submitterLogin(Deno.uid() ?? 0);
  const cases: [string, boolean][] = [
    [`!${login}, static:anyone`, false],
    ["", false],
    [`${login.toUpperCase()}`, true],
    [`inline:{ ${login}=yes }`, true],
    ["inline:{ nobody-else=yes }", false],
  ];
  for (const [list, allowed] of cases) {
    const inst = makeInstance(`authorized_submit_users = ${list}\n`);
    const r = await runProgram("sendmail", ["-f", "a@x", "b@x"], { stdin: "x\n", env: inst.env });
    const d = await runProgram("postdrop", [], { stdin: "", env: inst.env });
    if (allowed) {
      assertEquals(r.code, 0, `${list}: ${r.stderr}`);
      assertEquals(d.code, 0, `${list}: ${d.stderr}`);
    } else {
      assertEquals(r.code, 75, list);
      assertStringIncludes(
        r.stderr,
        `sendmail: fatal: User ${login}(${Deno.uid()}) is not allowed to submit mail`,
      );
      assertEquals(d.code, 1, list);
      assertStringIncludes(
        d.stderr,
        `postdrop: fatal: User ${login}(${Deno.uid()}) is not allowed to submit mail`,
      );
      assertEquals(maildropFiles(inst), []);
    }
    removeInstance(inst);
  }
});
