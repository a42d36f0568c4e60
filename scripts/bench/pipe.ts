// Benchmark: pipe(8) deliveries per second. One queued message handed to the
// pipe delivery code over the delivery-agent protocol (in process, on a unix
// socket) whose command is `cat > /dev/null`, one request at a time and four
// at once (as four pipe processes would take them); beside it the bare cost
// of running a command through lib/deliver/command.ts and the system's own
// fork+exec rate from a shell loop, the floor any pipe(8) stands on. No
// reference figure in this run: the reference pipe(8) only runs under its
// own master and queue manager, as root.

import * as net from "node:net";
import { configFromText } from "../../lib/config/mod.ts";
import { captureLog } from "../../lib/log.ts";
import { createQueueTree, queueFilePath } from "../../lib/queue/layout.ts";
import { encodeRecord, joinRecords } from "../../lib/queue/record.ts";
import type { BounceService } from "../../lib/bounce_client.ts";
import { handleDeliveryConnection } from "../../lib/deliver/agent.ts";
import { sendDeliverRequest } from "../../lib/deliver/client.ts";
import type { DeliverRequest } from "../../lib/deliver/request.ts";
import { runCommand } from "../../lib/deliver/command.ts";
import { parsePipeAttributes } from "../../daemons/pipe/attributes.ts";
import { deliverPipe } from "../../daemons/pipe/deliver.ts";

const quietBounce: BounceService = {
  append: () => Promise.resolve(true),
  notify: () => Promise.resolve(true),
};

/** Writes one active queue file; returns the request that delivers it. */
function queueMessage(queueDirectory: string): DeliverRequest {
  const layout = { queueDirectory, hashQueueNames: [], hashQueueDepth: 1 };
  createQueueTree(layout);
  const id = "BENCH0PIPE";
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.";
  const body = ["Subject: bench", "From: bench@example.com", ""];
  for (let n = 0; n < 4000; n += line.length + 1) body.push(line);
  const content = body.map((l) => encodeRecord("N", l));
  const size = content.reduce((n, r) => n + r.length, 0);
  const env = joinRecords([
    encodeRecord("T", `${Math.floor(Date.now() / 1000)} 0`),
    encodeRecord("S", "bench@example.com"),
    encodeRecord("R", "rcpt@example.com"),
  ]);
  const head = (offset: number) =>
    encodeRecord("C", [size, offset, 1, 0, size, 0].map((n) => String(n).padStart(15)).join(" "));
  const mesg = encodeRecord("M", "");
  const dataOffset = head(0).length + env.length + mesg.length;
  const rcptOffset = head(0).length + env.length - encodeRecord("R", "rcpt@example.com").length;
  const path = queueFilePath(layout, "active", id);
  Deno.writeFileSync(
    path,
    joinRecords([
      head(dataOffset),
      env,
      mesg,
      ...content,
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]),
  );
  // Mode 0700 marks a queue file complete.
  Deno.chmodSync(path, 0o700);
  return {
    flags: 0,
    queueName: "active",
    queueId: id,
    dataOffset,
    dataSize: size,
    nexthop: "example.com",
    encoding: "",
    smtputf8: 0,
    sender: "bench@example.com",
    envid: "",
    ret: 0,
    arrival: Date.now() / 1000,
    active: Date.now() / 1000,
    attrs: {},
    recipients: [{
      origRcpt: "",
      address: "rcpt@example.com",
      offset: rcptOffset,
      dsnOrcpt: "",
      notify: 0,
    }],
  };
}

/** Runs `once` for about `ms`, `parallel` at a time; returns completions per second. */
async function rate(once: () => Promise<unknown>, parallel: number, ms = 2500): Promise<number> {
  for (let i = 0; i < 5; i++) await once();
  let count = 0;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() - start < ms) {
      await once();
      count++;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return count / ((performance.now() - start) / 1000);
}

/** fork+exec of /bin/true from a shell loop: commands per second. */
function shellFloor(): number {
  const n = 500;
  const start = performance.now();
  new Deno.Command("/bin/sh", {
    args: ["-c", `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`],
  })
    .outputSync();
  return n / ((performance.now() - start) / 1000);
}

/** Prints the figures. */
export async function bench(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-pipe-" });
  // The command runs as user= in the queue directory.
  await Deno.chmod(dir, 0o755);
  captureLog(Deno.env.get("BENCH_LOG") ? (l) => console.error(l) : () => {});
  try {
    const request = queueMessage(`${dir}/queue`);
    await Deno.chmod(`${dir}/queue`, 0o755);
    const layout = { queueDirectory: `${dir}/queue`, hashQueueNames: [], hashQueueDepth: 1 };
    const config = configFromText(dir, "mail_owner = no-such-owner\n");
    const user = Deno.uid() === 0 ? "nobody" : (Deno.env.get("USER") ?? "nobody");
    const attrs = parsePipeAttributes(
      [`user=${user}`, "flags=R", "argv=/bin/sh", "-c", "cat > /dev/null", "${recipient}"],
      config,
    );
    const settings = {
      service: "bench",
      attrs,
      layout,
      queueDirectory: layout.queueDirectory,
      timeLimit: 100,
      delimiters: "+",
      exportEnvironment: [],
      importEnvironment: [],
      masterCf: `${dir}/master.cf`,
    };
    const path = `${dir}/pipe.sock`;
    const server = net.createServer((conn) => {
      handleDeliveryConnection(
        conn,
        { layout, bounce: quietBounce, resolution: 2 },
        (s) => deliverPipe(s, settings),
      ).finally(() => conn.end());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const deliver = async () => {
      const reply = await sendDeliverRequest(path, request);
      const outcome = [...reply.results.values()][0];
      if (outcome !== "sent") throw new Error(`pipe bench: delivery ${outcome}`);
    };
    const bare = await rate(() => runCommand({ argv: ["/bin/true"], timeLimit: 100 }), 1);
    const one = await rate(deliver, 1);
    const four = await rate(deliver, 4);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    console.log(`pipe: command through lib/deliver/command (/bin/true): ${bare.toFixed(0)}/s`);
    console.log(
      `pipe: deliveries (4 KB message, sh -c 'cat > /dev/null'), one at a time: ${
        one.toFixed(0)
      }/s`,
    );
    console.log(`pipe: deliveries, four at once: ${four.toFixed(0)}/s`);
    console.log(
      `pipe: floor, fork+exec of /bin/true from a shell loop: ${shellFloor().toFixed(0)}/s`,
    );
  } finally {
    captureLog(undefined);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await bench();
