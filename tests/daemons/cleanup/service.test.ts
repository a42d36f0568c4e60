// The cleanup service in a real process: the protocol, the commit rule, and
// crash safety (a cleanup killed mid-stream leaves nothing that looks
// complete, and what it acknowledged is on disk).

import { assert, assertEquals } from "../../assert.ts";
import { projectRoot } from "../../run.ts";
import { AttrReader, encodeAttrs } from "../../../lib/ipc/attr.ts";
import { encodeRecord } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { createQueueTree, queueFilePath } from "../../../lib/queue/layout.ts";
import { messageRecords } from "./helpers.ts";

interface Instance {
  dir: string;
  socket: string;
  child: Deno.ChildProcess;
  rewrite: Deno.ChildProcess;
  layout: { queueDirectory: string; hashQueueNames: string[]; hashQueueDepth: number };
}

/** Starts a cleanup daemon on its own socket (-L) in a fresh instance folder. */
async function startCleanup(mainCf = ""): Promise<Instance> {
  const dir = await Deno.makeTempDir({ prefix: "cleanup-svc-" });
  const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nmyhostname = mail.example.com\nmydomain = example.com\n` +
      `myorigin = $mydomain\nhash_queue_names =\nmaillog_file = ${dir}/maillog\n${mainCf}`,
  );
  // cleanup asks trivial-rewrite for canonical forms, as in Postfix.
  const rewrite = await spawnDaemon(
    dir,
    "trivial_rewrite",
    "trivial-rewrite",
    `${dir}/queue/private/rewrite`,
  );
  const socket = `${dir}/cleanup.sock`;
  const child = await spawnDaemon(dir, "cleanup", "cleanup", socket);
  return { dir, socket, child, rewrite, layout };
}

/** Starts a daemon module on its own socket and waits for the socket. */
async function spawnDaemon(
  dir: string,
  module: string,
  name: string,
  socket: string,
): Promise<Deno.ChildProcess> {
  const script = `${dir}/${module}.ts`;
  await Deno.writeTextFile(
    script,
    `import { main } from "${projectRoot}daemons/${module}/mod.ts";\n` +
      `Deno.exit(await main(Deno.args, { name: "${name}", program: "${name}" }));\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-ffi", "--unstable-net", script, "-L", `unix:${socket}`],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      Deno.statSync(socket);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return child;
}

async function stop(inst: Instance): Promise<void> {
  for (const child of [inst.child, inst.rewrite]) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }
  await Deno.remove(inst.dir, { recursive: true });
}

/** A client connection that reads attribute lists. */
class Client {
  private reader = new AttrReader();
  private lists: Map<string, string>[] = [];
  private constructor(readonly conn: Deno.UnixConn) {}

  static async open(path: string): Promise<Client> {
    return new Client(await Deno.connect({ transport: "unix", path }));
  }

  async attrs(): Promise<Map<string, string>> {
    const buf = new Uint8Array(4096);
    while (this.lists.length === 0) {
      const n = await this.conn.read(buf);
      if (n === null) throw new Error("connection closed");
      this.lists.push(...this.reader.push(buf.subarray(0, n)));
    }
    return this.lists.shift()!;
  }

  async write(data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) at += await this.conn.write(data.subarray(at));
  }
}

function recordBytes(text: string): Uint8Array[] {
  return messageRecords({ text }).map((r) => encodeRecord(r.type, r.data));
}

Deno.test("cleanup service queues a message, replies after commit, and logs message-id", async () => {
  const inst = await startCleanup();
  try {
    const c = await Client.open(inst.socket);
    assertEquals((await c.attrs()).get("protocol"), "cleanup");
    await c.write(encodeAttrs({ flags: 50 }));
    const id = (await c.attrs()).get("queue_id")!;
    for (const r of recordBytes("Subject: hello\n\nbody")) await c.write(r);
    const reply = await c.attrs();
    assertEquals(reply.get("status"), "0");
    c.conn.close();
    const path = queueFilePath(inst.layout, "incoming", id);
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o700);
    readQueueFile(path); // throws unless complete
    const log = await Deno.readTextFile(`${inst.dir}/maillog`);
    assert(log.includes(`${id}: message-id=<`), log);
  } finally {
    await stop(inst);
  }
});

Deno.test("cleanup service removes a rejected message and replies with the reason", async () => {
  const inst = await startCleanup("message_size_limit = 300\n");
  try {
    const c = await Client.open(inst.socket);
    await c.attrs();
    await c.write(encodeAttrs({ flags: 50 }));
    const id = (await c.attrs()).get("queue_id")!;
    for (const r of recordBytes("Subject: big\n\n" + "x".repeat(1000))) await c.write(r);
    const reply = await c.attrs();
    assertEquals(reply.get("status"), "4");
    assertEquals(reply.get("reason"), "5.3.4 message file too big");
    c.conn.close();
    let exists = true;
    try {
      Deno.statSync(queueFilePath(inst.layout, "incoming", id));
    } catch {
      exists = false;
    }
    assertEquals(exists, false);
  } finally {
    await stop(inst);
  }
});

Deno.test("a cleanup killed mid-stream leaves no complete-looking file; acknowledged mail survives", async () => {
  const inst = await startCleanup();
  try {
    // One message acknowledged before the crash.
    const done = await Client.open(inst.socket);
    await done.attrs();
    await done.write(encodeAttrs({ flags: 50 }));
    const doneId = (await done.attrs()).get("queue_id")!;
    for (const r of recordBytes("Subject: first\n\nbody")) await done.write(r);
    assertEquals((await done.attrs()).get("status"), "0");
    done.conn.close();
    // A second one cut off in the middle of its content.
    const c = await Client.open(inst.socket);
    await c.attrs();
    await c.write(encodeAttrs({ flags: 50 }));
    const id = (await c.attrs()).get("queue_id")!;
    const records = recordBytes("Subject: second\n\n" + "line\n".repeat(2000));
    for (const r of records.slice(0, 100)) await c.write(r);
    await new Promise((r) => setTimeout(r, 100));
    inst.child.kill("SIGKILL");
    await inst.child.status;
    c.conn.close();
    const incoming = `${inst.layout.queueDirectory}/incoming`;
    for (const entry of Deno.readDirSync(incoming)) {
      const mode = Deno.statSync(`${incoming}/${entry.name}`).mode! & 0o777;
      if (entry.name === doneId) assertEquals(mode, 0o700);
      else assertEquals(mode & 0o100, 0, `${entry.name} looks complete`);
    }
    readQueueFile(queueFilePath(inst.layout, "incoming", doneId));
    assert(id !== doneId);
  } finally {
    await stop(inst);
  }
});

Deno.test("a client that goes away mid-stream leaves nothing queued, and the service goes on", async () => {
  const inst = await startCleanup();
  try {
    const c = await Client.open(inst.socket);
    await c.attrs();
    await c.write(encodeAttrs({ flags: 50 }));
    const id = (await c.attrs()).get("queue_id")!;
    const records = recordBytes("Subject: cut\n\n" + "line\n".repeat(50));
    for (const r of records.slice(0, 20)) await c.write(r);
    c.conn.close();
    const path = queueFilePath(inst.layout, "incoming", id);
    for (let t = 0; t < 100; t++) {
      try {
        Deno.statSync(path);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    let exists = true;
    try {
      Deno.statSync(path);
    } catch {
      exists = false;
    }
    assertEquals(exists, false);
    // The next client is served as usual.
    const next = await Client.open(inst.socket);
    await next.attrs();
    await next.write(encodeAttrs({ flags: 50 }));
    await next.attrs();
    for (const r of recordBytes("Subject: after\n\nbody")) await next.write(r);
    assertEquals((await next.attrs()).get("status"), "0");
    next.conn.close();
  } finally {
    await stop(inst);
  }
});

Deno.test("cleanup wakes the queue manager with W on public/qmgr after queueing", async () => {
  const inst = await startCleanup();
  const path = `${inst.layout.queueDirectory}/public/qmgr`;
  const listener = Deno.listen({ transport: "unix", path });
  try {
    const got = (async () => {
      const conn = await listener.accept();
      const buf = new Uint8Array(16);
      const n = await conn.read(buf);
      conn.close();
      return new TextDecoder().decode(buf.subarray(0, n ?? 0));
    })();
    const c = await Client.open(inst.socket);
    await c.attrs();
    await c.write(encodeAttrs({ flags: 50 }));
    await c.attrs();
    for (const r of recordBytes("Subject: wake\n\nbody")) await c.write(r);
    assertEquals((await c.attrs()).get("status"), "0");
    c.conn.close();
    assertEquals(await got, "W");
  } finally {
    listener.close();
    await stop(inst);
  }
});

Deno.test("cleanup service reads the request list and the records sent in one write", async () => {
  const inst = await startCleanup();
  try {
    const c = await Client.open(inst.socket);
    await c.attrs();
    // An empty attribute value, then the records, all at once: nothing may be lost.
    const parts = [
      encodeAttrs({ flags: 50, note: "" }),
      ...recordBytes("Subject: one write\n\nbody"),
    ];
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    await c.write(all);
    const id = (await c.attrs()).get("queue_id")!;
    assertEquals((await c.attrs()).get("status"), "0");
    c.conn.close();
    readQueueFile(queueFilePath(inst.layout, "incoming", id));
  } finally {
    await stop(inst);
  }
});
