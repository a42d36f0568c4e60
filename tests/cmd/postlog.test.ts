import { assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { runProgram } from "../run.ts";

async function instance(extra = ""): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-postlog-" });
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `maillog_file = ${dir}/maillog\nmaillog_file_prefixes = ${dir}\n` +
      `myhostname = mail.example.com\n${extra}`,
  );
  return dir;
}

async function maillog(dir: string): Promise<string[]> {
  return (await Deno.readTextFile(`${dir}/maillog`)).trimEnd().split("\n");
}

Deno.test("postlog logs its arguments as one record in Postfix's maillog format", async () => {
  const dir = await instance();
  const r = await runProgram("postlog", ["-c", dir, "hello", "world"]);
  assertEquals(r.code, 0);
  const [line] = await maillog(dir);
  assertMatch(
    line,
    /^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d mail postfix\/postlog\[\d+\]: hello world$/,
  );
});

Deno.test("postlog logs each standard input line as a record, with -t tag and -p warn", async () => {
  const dir = await instance();
  const r = await runProgram("postlog", ["-c", dir, "-t", "backup", "-p", "warn"], {
    stdin: "first\r\nsecond\n",
  });
  assertEquals(r.code, 0);
  const lines = await maillog(dir);
  assertEquals(lines.length, 2);
  assertMatch(lines[0], / backup\[\d+\]: warning: first$/);
  assertMatch(lines[1], / backup\[\d+\]: warning: second$/);
});

Deno.test("postlog uses syslog_name in its tag and writes error, fatal and panic levels", async () => {
  const dir = await instance("syslog_name = postfix-out\n");
  await runProgram("postlog", ["-c", dir, "-p", "error", "e1"]);
  const fatal = await runProgram("postlog", ["-c", dir, "-p", "fatal", "f1"]);
  assertEquals(fatal.code, 0, "postlog -p fatal reports the condition and exits 0, as Postfix");
  const lines = await maillog(dir);
  assertMatch(lines[0], / postfix-out\/postlog\[\d+\]: error: e1$/);
  assertMatch(lines[1], / postfix-out\/postlog\[\d+\]: fatal: f1$/);
});

Deno.test("postlog refuses an unknown severity with a fatal log line and exit 1", async () => {
  const dir = await instance();
  const r = await runProgram("postlog", ["-c", dir, "-p", "loud", "x"]);
  assertEquals(r.code, 1);
  assertStringIncludes((await maillog(dir))[0], 'fatal: bad severity: "loud"');
});

Deno.test("postlog refuses a maillog_file outside maillog_file_prefixes", async () => {
  const dir = await instance();
  await Deno.writeTextFile(`${dir}/main.cf`, `maillog_file = ${dir}/maillog\n`);
  const r = await runProgram("postlog", ["-c", dir, "x"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "does not match any prefix in maillog_file_prefixes");
});

Deno.test("postlog fails clearly when main.cf is missing", async () => {
  const r = await runProgram("postlog", ["-c", "/nonexistent-posthorn-dir", "x"]);
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "open /nonexistent-posthorn-dir/main.cf: No such file or directory",
  );
});

Deno.test("postlog rejects an unknown flag with the usage line", async () => {
  const r = await runProgram("postlog", ["-z"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "invalid option -- 'z'");
  assertStringIncludes(r.stderr, "usage: postlog");
});

Deno.test("without maillog_file, postlog sends syslog datagrams with syslog_facility and the level's severity", async () => {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-syslog-" });
  await Deno.writeTextFile(`${dir}/main.cf`, "syslog_facility = local3\nsyslog_name = relay\n");
  const path = `${dir}/log`;
  const listener = Deno.listenDatagram({ transport: "unixpacket", path });
  try {
    const env = { POSTHORN_SYSLOG_SOCKET: path };
    const got: string[] = [];
    const receive = (async () => {
      const dec = new TextDecoder();
      for (let i = 0; i < 2; i++) got.push(dec.decode((await listener.receive())[0]));
    })();
    assertEquals((await runProgram("postlog", ["-c", dir, "hello"], { env })).code, 0);
    assertEquals(
      (await runProgram("postlog", ["-c", dir, "-p", "warn", "careful"], { env })).code,
      0,
    );
    await receive;
    // local3 = 19: info 19*8+6 = 158, warning 19*8+4 = 156; the day padded with a space as syslog(3) does.
    assertMatch(got[0], /^<158>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d relay\/postlog\[\d+\]: hello$/);
    assertMatch(
      got[1],
      /^<156>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d relay\/postlog\[\d+\]: warning: careful$/,
    );
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
