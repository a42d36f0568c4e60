// The reference's postcat must read Posthorn's queue files. Where the
// reference is installed, files made now by Posthorn's sendmail are printed
// by both postcats and compared; the golden posthorn-*.maildrop files (with
// the reference's output beside them, checked in postcat_golden.test.ts)
// cover machines without it.

import { assertEquals } from "../assert.ts";
import { runProgram } from "../run.ts";
import { maildropFiles, makeInstance, removeInstance } from "./queue_instance.ts";

const reference = "/usr/sbin/postcat";
const haveReference = (() => {
  try {
    return Deno.statSync(reference).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "the reference's postcat prints Posthorn's maildrop files as Posthorn's postcat does",
  ignore: !haveReference,
  async fn() {
    for (const long of ["no", "yes"]) {
      const inst = makeInstance(`enable_long_queue_ids = ${long}\n`);
      const input = "From: a@example.com\nTo: b@example.com\nBcc: c@example.com\nSubject: t\n\n" +
        "x".repeat(3000) + "\nline two\n";
      const sent = await runProgram("sendmail", [
        "-t",
        "-N",
        "delay",
        "-V",
        "e1",
        "-f",
        "a@example.com",
      ], {
        stdin: input,
        env: inst.env,
      });
      assertEquals(sent.code, 0, sent.stderr);
      const [id] = maildropFiles(inst);
      // The reference needs only queue_directory; Posthorn's instance main.cf serves both.
      const refConfig = `${inst.dir}/refetc`;
      Deno.mkdirSync(refConfig);
      Deno.writeTextFileSync(`${refConfig}/main.cf`, `queue_directory = ${inst.queueDir}\n`);
      for (const opts of [[], ["-v"], ["-o"], ["-bh"], ["-e"], ["-od"]]) {
        const args = [...opts, `maildrop/${id}`];
        const ref = await new Deno.Command(reference, {
          args,
          cwd: inst.queueDir,
          env: { MAIL_CONFIG: refConfig, TZ: "UTC" },
          stdout: "piped",
          stderr: "null",
        }).output();
        const ours = await runProgram("postcat", args, { cwd: inst.queueDir, env: inst.env });
        assertEquals(
          ours.stdout,
          new TextDecoder().decode(ref.stdout),
          `postcat ${args.join(" ")}`,
        );
        assertEquals(ours.code, ref.code);
      }
      const q = await runProgram("postcat", ["-q", id], { env: inst.env });
      assertEquals(q.code, 0, q.stderr);
      assertEquals(q.stdout.split("\n")[0], `*** ENVELOPE RECORDS maildrop/${id} ***`);
      removeInstance(inst);
    }
  },
});

Deno.test("postcat -q reports an id that is in no queue as Postfix does", async () => {
  const inst = makeInstance();
  const r = await runProgram("postcat", ["-q", "NOSUCH"], { env: inst.env });
  assertEquals(r.code, 1);
  assertEquals(r.stderr, "postcat: fatal: open queue file NOSUCH: No such file or directory\n");
  const f = await runProgram("postcat", [`${inst.dir}/none`], { env: inst.env });
  assertEquals(f.stderr, `postcat: fatal: open ${inst.dir}/none: No such file or directory\n`);
  removeInstance(inst);
});

Deno.test("postcat warns about a file that is not a queue file", async () => {
  const inst = makeInstance();
  Deno.writeTextFileSync(`${inst.dir}/junk`, "hello\n");
  const r = await runProgram("postcat", [`${inst.dir}/junk`], { env: inst.env });
  assertEquals(r.code, 0);
  assertEquals(r.stdout, "");
  assertEquals(r.stderr, `postcat: warning: ${inst.dir}/junk: input is not a valid queue file\n`);
  removeInstance(inst);
});

Deno.test("postcat reads standard input as the reference does, and refuses a bad offset", async () => {
  const inst = makeInstance();
  const golden = new URL("../golden/queue/", import.meta.url);
  const file = Deno.readFileSync(new URL("simple.hold", golden));
  const r = await runProgram("postcat", [], { stdin: file, env: inst.env });
  const ref = Deno.readTextFileSync(new URL("simple.hold.postcat.ref", golden));
  const expected = ref.split("### postcat -v ")[0].split("\n").slice(1).join("\n")
    .replaceAll("simple.hold", "stdin");
  assertEquals(r.stdout, expected);
  const q = await runProgram("postcat", ["-q"], { stdin: file, env: inst.env });
  assertEquals(q.stdout, expected);
  const bad = await runProgram("postcat", ["-s", "abc", "x"], { env: inst.env });
  assertEquals(bad.code, 1);
  assertEquals(bad.stderr, "postcat: fatal: bad offset: abc\n");
  removeInstance(inst);
});
