import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";
import { runProgram } from "../run.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import { QueueFileRefused, readQueueFile } from "../../lib/queue/file.ts";
import {
  describeRecords,
  maildropFiles,
  makeInstance,
  onlyMaildropRecords,
  removeInstance,
} from "./queue_instance.ts";

const body = [
  encodeRecord("F", "Full"),
  encodeRecord("S", "a@b"),
  encodeRecord("R", "c@d"),
  encodeRecord("M"),
  encodeRecord("N", "Subject: x"),
  encodeRecord("N", ""),
  encodeRecord("N", "body"),
  encodeRecord("X"),
  encodeRecord("E"),
];
const stream = joinRecords(body);

Deno.test("postdrop queues a record stream after an arrival time and replies with the queue id", async () => {
  const inst = makeInstance();
  const r = await runProgram("postdrop", [], { stdin: stream, env: inst.env });
  assertEquals(r.code, 0, r.stderr);
  const [id] = maildropFiles(inst);
  assertEquals(
    r.stdout,
    `protocol\0postdrop_protocol\0queue_id\0${id}\0\0status\x000\0reason\0\0\0`,
  );
  const records = onlyMaildropRecords(inst);
  assertEquals(records[0].type, "T");
  assertEquals(describeRecords(records), [
    "F:Full",
    "S:a@b",
    "R:c@d",
    "M:",
    "N:Subject: x",
    "N:",
    "N:body",
    "X:",
    "E:",
  ]);
  removeInstance(inst);
});

Deno.test("postdrop refuses records a submitter may not write, and leaves nothing behind", async () => {
  const inst = makeInstance();
  const cases: [Uint8Array, string][] = [
    [joinRecords([encodeRecord("T", "1 2"), stream]), "postdrop: fatal: uid="],
    [joinRecords([encodeRecord("C", "x"), stream]), ": unexpected record type: 67"],
    [
      joinRecords([...body.slice(0, 4), encodeRecord("R", "x@y"), ...body.slice(4)]),
      ": unexpected record type: 82",
    ],
    [joinRecords([stream, encodeRecord("N", "after the end")]), ": unexpected record type: 78"],
    [joinRecords([encodeRecord("S", "a\0b"), ...body.slice(2)]), ": NUL in FROM record"],
  ];
  for (const [input, text] of cases) {
    const r = await runProgram("postdrop", [], { stdin: input, env: inst.env });
    assertEquals(r.code, 1, text);
    assertStringIncludes(r.stderr, text);
    assertEquals(maildropFiles(inst), [], text);
  }
  removeInstance(inst);
});

Deno.test("postdrop: input cut inside a record is malformed; cut between records cancels quietly", async () => {
  const inst = makeInstance();
  const cut = await runProgram("postdrop", [], { stdin: stream.subarray(0, 9), env: inst.env });
  assertEquals(cut.code, 1);
  assertStringIncludes(
    cut.stderr,
    "postdrop: warning: stdin: unexpected EOF in data, record type 83 length 3",
  );
  assertStringIncludes(cut.stderr, ": malformed input");
  const early = await runProgram("postdrop", [], {
    stdin: stream.subarray(0, stream.length - 2),
    env: inst.env,
  });
  assertEquals(early.code, 0);
  assertEquals(early.stderr, "");
  assertEquals(maildropFiles(inst), []);
  removeInstance(inst);
});

Deno.test("postdrop drops attributes a submitter may not set, with a warning", async () => {
  const inst = makeInstance();
  const input = joinRecords([
    encodeRecord("A", "log_client_address=10.0.0.1"),
    encodeRecord("A", "rewrite_context=local"),
    stream,
  ]);
  const r = await runProgram("postdrop", [], { stdin: input, env: inst.env });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, ": ignoring attribute record: log_client_address=10.0.0.1");
  assertEquals(describeRecords(onlyMaildropRecords(inst)).slice(0, 2), [
    "A:rewrite_context=local",
    "F:Full",
  ]);
  removeInstance(inst);
});

Deno.test("postdrop's file is incomplete (no execute bit, refused by readers) until the end record is in", async () => {
  const inst = makeInstance();
  const root = new URL("../../", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-ffi", "--unstable-net", `${root}mod.ts`, "postdrop"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: inst.env,
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(stream.subarray(0, stream.length - 4));
  let files: string[] = [];
  for (let i = 0; i < 200 && files.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    files = maildropFiles(inst).filter((n) => !n.includes("."));
  }
  assertEquals(files.length, 1);
  const path = `${inst.queueDir}/maildrop/${files[0]}`;
  assertEquals(Deno.statSync(path).mode! & 0o777, 0o640);
  assertThrows(() => readQueueFile(path), QueueFileRefused, "incomplete");
  await writer.write(stream.subarray(stream.length - 4));
  await writer.close();
  const out = await child.output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(Deno.statSync(path).mode! & 0o777, 0o740);
  assert(readQueueFile(path).length > stream.length);
  removeInstance(inst);
});
