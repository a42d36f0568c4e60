// The queue manager's scheduler with an in-process delivery agent the test
// controls: slow start and feedback, grouping and recipient limits, retries
// within the backoff bounds, expiry, delay warnings, and restart safety.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { queueFilePath } from "../../../lib/queue/layout.ts";
import { decodeRecords, encodeRecord, joinRecords, recordText } from "../../../lib/queue/record.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { Qmgr, TransportUnavailable } from "../../../daemons/qmgr/core.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";
import {
  makeQmgr,
  makeQueue,
  queueFiles,
  recordingBounce,
  TestAgent,
  testResolver,
  withLog,
  writeMessage,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("qmgr delivers a message, logs it active, and removes it", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce);
  const id = writeMessage(q, { recipients: ["a@one.test", "b@one.test"] });
  await withLog(async (lines) => {
    const qmgr = makeQmgr(q, agent, bounce);
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    const log = lines.join("\n");
    assertStringIncludes(log, `${id}: from=<sender@example.org>, size=`);
    assertStringIncludes(log, "nrcpt=2 (queue active)");
    assertStringIncludes(log, `${id}: to=<a@one.test>, relay=test, delay=`);
    assertStringIncludes(log, "dsn=2.0.0, status=sent (delivered)");
    assertStringIncludes(log, `${id}: removed`);
  });
  assertEquals(agent.requests.length, 1, "both recipients in one request");
  assertEquals(agent.delivered.sort(), ["a@one.test", "b@one.test"]);
  assertEquals(queueFiles(q, "active"), []);
  assertEquals(queueFiles(q, "incoming"), []);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "qmgr groups recipients by destination and splits at the recipient limit",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce);
    const rcpts = [
      ...Array.from({ length: 7 }, (_, i) => `u${i}@big.test`),
      "x@small.test",
      "y@small.test",
    ];
    writeMessage(q, { recipients: rcpts });
    const qmgr = makeQmgr(q, agent, bounce, "smtp_destination_recipient_limit = 3\n");
    await withLog(async () => {
      await qmgr.start();
      await qmgr.idle();
    });
    qmgr.stop();
    const sizes = (nexthop: string) =>
      agent.requests.filter((r) => r.nexthop === nexthop).map((r) => r.recipients.length);
    assertEquals(sizes("big.test").sort(), [1, 3, 3]);
    assertEquals(sizes("small.test"), [2]);
    for (const r of agent.requests) {
      assert(
        r.recipients.every((x) => x.address.endsWith("@" + r.nexthop)),
        "one destination per request",
      );
    }
    assertEquals(agent.delivered.length, 9);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "qmgr concurrency starts at the initial window and ramps up to the limit",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce, () => "sent", 5);
    for (let i = 0; i < 120; i++) writeMessage(q, { recipients: [`u${i}@ramp.test`] });
    const qmgr = makeQmgr(
      q,
      agent,
      bounce,
      "initial_destination_concurrency = 2\ndefault_destination_concurrency_limit = 8\n",
    );
    await withLog(async () => {
      await qmgr.start();
      await qmgr.idle();
    });
    qmgr.stop();
    const profile = agent.profile.get("smtp:ramp.test")!;
    assert(profile.slice(0, 2).every((n) => n <= 2), `slow start: ${profile.slice(0, 4)}`);
    const max = agent.maxInFlight.get("smtp:ramp.test")!;
    assertEquals(max, 8, "the window grows to the concurrency limit and no further");
    assertEquals(agent.delivered.length, 120);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("qmgr backs off a failing destination and declares it dead", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(
    q,
    bounce,
    (req) => req.nexthop === "down.test" ? "site-defer" : "sent",
    5,
  );
  for (let i = 0; i < 30; i++) writeMessage(q, { recipients: [`u${i}@down.test`] });
  writeMessage(q, { recipients: ["ok@up.test"] });
  const qmgr = makeQmgr(q, agent, bounce, "initial_destination_concurrency = 5\n");
  const log = await withLog(async (lines) => {
    await qmgr.start();
    await qmgr.idle();
    return lines.join("\n");
  });
  qmgr.stop();
  const tried = agent.requests.filter((r) => r.nexthop === "down.test").length;
  assert(tried <= 6, `a dead destination gets no more requests after the failed cohort (${tried})`);
  assertStringIncludes(
    log,
    "status=deferred (delivery temporarily suspended: connect to test: Connection refused)",
  );
  assertEquals(agent.delivered, ["ok@up.test"], "other destinations are not held up");
  assertEquals(queueFiles(q, "deferred").length, 30);
  const deferLogged = bounce.calls.filter((c) => c.kind === "append" && c.log === "defer");
  assertEquals(
    new Set(deferLogged.map((c) => c.rcpt)).size,
    30,
    "every recipient is in a defer log",
  );
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "qmgr moves a deferred message to deferred with its retry time within the backoff bounds",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce, () => "deferred");
    const now = Date.now() / 1000;
    const fresh = writeMessage(q, { recipients: ["a@slow.test"], arrival: now });
    const old = writeMessage(q, { recipients: ["b@slow.test"], arrival: now - 20000 });
    const middle = writeMessage(q, { recipients: ["c@slow.test"], arrival: now - 1000 });
    const qmgr = makeQmgr(
      q,
      agent,
      bounce,
      "minimal_backoff_time = 300s\nmaximal_backoff_time = 4000s\n",
    );
    await withLog(async () => {
      await qmgr.start();
      await qmgr.idle();
    });
    qmgr.stop();
    const retryIn = (id: string) =>
      Deno.statSync(queueFilePath(q.layout, "deferred", id)).mtime!.getTime() / 1000 - now;
    const near = (value: number, want: number) => Math.abs(value - want) < 5;
    assert(
      near(retryIn(fresh), 300),
      `young message waits the minimal backoff (${retryIn(fresh)})`,
    );
    assert(near(retryIn(old), 4000), `old message waits the maximal backoff (${retryIn(old)})`);
    assert(near(retryIn(middle), 1000), `in between, the message's age (${retryIn(middle)})`);
    // A deferred scan leaves files whose retry time has not come.
    agent.action = () => "sent";
    const again = makeQmgr(q, agent, bounce);
    await withLog(async () => {
      await again.trigger("D");
      await again.idle();
    });
    assertEquals(queueFiles(q, "deferred").length, 3, "not due yet");
    // postqueue -f (A) ignores the retry times.
    await withLog(async () => {
      await again.trigger("A");
      await again.idle();
    });
    again.stop();
    assertEquals(queueFiles(q, "deferred").length, 0);
    assertEquals(agent.delivered.sort(), ["a@slow.test", "b@slow.test", "c@slow.test"]);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("qmgr returns an expired message to the sender and removes it", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce, () => "deferred");
  const id = writeMessage(q, {
    recipients: ["a@slow.test"],
    arrival: Date.now() / 1000 - 6 * 86400,
  });
  const log = await withLog(async (lines) => {
    const qmgr = makeQmgr(q, agent, bounce, "maximal_queue_lifetime = 5d\n");
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    return lines.join("\n");
  });
  assertStringIncludes(log, `${id}: from=<sender@example.org>, status=expired, returned to sender`);
  assertStringIncludes(log, `${id}: removed`);
  assert(bounce.calls.some((c) => c.kind === "flush" && c.log === "defer" && c.queueId === id));
  assertEquals(queueFiles(q, "deferred"), []);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("qmgr uses bounce_queue_lifetime for a null-sender message", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce, () => "deferred");
  const id = writeMessage(q, {
    sender: "",
    recipients: ["a@slow.test"],
    arrival: Date.now() / 1000 - 2 * 86400,
  });
  const log = await withLog(async (lines) => {
    const qmgr = makeQmgr(
      q,
      agent,
      bounce,
      "maximal_queue_lifetime = 5d\nbounce_queue_lifetime = 1d\n",
    );
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    return lines.join("\n");
  });
  assertStringIncludes(log, `${id}: from=<>, status=expired, returned to sender`);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("qmgr sends a delay warning once", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce, () => "deferred");
  const now = Math.floor(Date.now() / 1000);
  const id = writeMessage(q, {
    recipients: ["a@slow.test"],
    arrival: now - 7200,
    warnTime: now - 3600,
  });
  for (let round = 0; round < 3; round++) {
    const qmgr = makeQmgr(q, agent, bounce);
    await withLog(async () => {
      await qmgr.start();
      await qmgr.trigger("A");
      await qmgr.idle();
    });
    qmgr.stop();
  }
  const warnings = bounce.calls.filter((c) => c.kind === "warn" && c.queueId === id);
  assertEquals(warnings.length, 1);
  assert(agent.requests.length >= 3, "the message was tried each round");
  const records = decodeRecords(Deno.readFileSync(queueFilePath(q.layout, "deferred", id)));
  assertEquals(
    recordText(records.find((r) => r.type === "W")!).trim(),
    "-1", // As the reference's qmgr writes it.
    "W record cleared in place",
  );
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("qmgr restarted mid-delivery never delivers a recipient twice", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  // The first agent delivers the first recipient (marking it done), then hangs:
  // the queue manager is stopped with the delivery unanswered.
  let first = true;
  const agent = new TestAgent(q, bounce, () => "sent");
  const crashing = new TestAgent(q, bounce, () => "hang");
  const id = writeMessage(q, { recipients: ["one@a.test", "two@b.test"] });
  const deliverOnce = agent.deliver;
  const mixed = new TestAgent(q, bounce);
  mixed.deliver = (transport, req) => {
    if (req.nexthop === "a.test" && first) {
      first = false;
      return deliverOnce(transport, req);
    }
    return crashing.deliver(transport, req);
  };
  const qm1 = makeQmgr(q, mixed, bounce);
  await withLog(async () => {
    await qm1.start();
    for (let i = 0; i < 100 && agent.delivered.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  qm1.stop();
  assertEquals(agent.delivered, ["one@a.test"]);
  assert(queueFiles(q, "active").includes(id), "the message is left in active");
  // A new queue manager starts on the same queue.
  const agent2 = new TestAgent(q, bounce);
  const qm2 = makeQmgr(q, agent2, bounce);
  await withLog(async () => {
    await qm2.start();
    await qm2.idle();
  });
  qm2.stop();
  assertEquals(agent2.delivered, ["two@b.test"], "only the recipient not yet done");
  assertEquals(queueFiles(q, "active"), []);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test(
  "qmgr holds back defer_transports until a flush, and defers resolver failures",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce);
    writeMessage(q, { recipients: ["a@held.test"] });
    writeMessage(q, { recipients: ["b@fail.test"] });
    const log = await withLog(async (lines) => {
      const qmgr = makeQmgr(q, agent, bounce, "defer_transports = smtp\n");
      await qmgr.start();
      await qmgr.idle();
      qmgr.stop();
      return lines.join("\n");
    });
    assertEquals(agent.requests.length, 0);
    assertEquals(agent.retried.map((r) => r.nexthop).sort(), [
      "4.3.0 address resolver failure",
      "4.3.2 deferred transport",
    ], "both go to the retry service, as in Postfix");
    assertStringIncludes(log, "to=<a@held.test>, relay=none");
    assertStringIncludes(log, "dsn=4.3.2, status=deferred (deferred transport)");
    assertStringIncludes(log, "status=deferred (address resolver failure)");
    const qmgr = makeQmgr(q, agent, bounce, "defer_transports = smtp\n");
    await withLog(async () => {
      await qmgr.trigger("A");
      await qmgr.idle();
    });
    qmgr.stop();
    assertEquals(agent.delivered, ["a@held.test"], "sendmail -q delivers deferred transports");
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "qmgr flushes the bounce log after bounced recipients and keeps the active limit",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce, () => "bounced");
    for (let i = 0; i < 6; i++) writeMessage(q, { recipients: [`u${i}@nowhere.test`] });
    let maxActive = 0;
    const qmgr = makeQmgr(q, agent, bounce, "qmgr_message_active_limit = 2\n");
    const orig = agent.deliver;
    agent.deliver = (t, r) => {
      maxActive = Math.max(maxActive, qmgr.activeCount);
      return orig(t, r);
    };
    await withLog(async () => {
      await qmgr.start();
      await qmgr.idle();
    });
    qmgr.stop();
    assert(maxActive >= 1 && maxActive <= 2, `active limit respected (${maxActive})`);
    assertEquals(bounce.calls.filter((c) => c.kind === "flush" && c.log === "bounce").length, 6);
    assertEquals(queueFiles(q, "incoming"), []);
    assertEquals(queueFiles(q, "deferred"), []);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "a small message preempts a large one at the same destination (nqmgr slots)",
  opts,
  async () => {
    const order = async (mainCf: string) => {
      const q = await makeQueue();
      const bounce = recordingBounce();
      const agent = new TestAgent(q, bounce, () => "sent", 2);
      writeMessage(q, { recipients: Array.from({ length: 40 }, (_, i) => `u${i}@dest.test`) });
      const small = writeMessage(q, { recipients: ["small@dest.test"] });
      const qmgr = makeQmgr(
        q,
        agent,
        bounce,
        "smtp_destination_recipient_limit = 2\nsmtp_destination_concurrency_limit = 1\n" +
          "initial_destination_concurrency = 1\n" + mainCf,
      );
      await withLog(async () => {
        await qmgr.start();
        await qmgr.idle();
      });
      qmgr.stop();
      await Deno.remove(q.dir, { recursive: true });
      assertEquals(agent.delivered.length, 41);
      return agent.requests.findIndex((r) => r.queueId === small);
    };
    const preempted = await order("");
    assert(preempted <= 2, `the one-recipient message goes early (request ${preempted})`);
    assertEquals(
      await order("smtp_delivery_slot_cost = 0\n"),
      20,
      "without preemption it waits for all 20",
    );
  },
);

Deno.test(
  "qmgr keeps qmgr_message_recipient_limit and the transport's process limit",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(q, bounce, () => "sent", 3);
    for (let i = 0; i < 6; i++) {
      writeMessage(q, { recipients: [0, 1, 2, 3].map((n) => `u${n}@d${(i + n) % 5}.test`) });
    }
    const config = configFromText(q.dir, "qmgr_message_recipient_limit = 10\n");
    const qmgr = new Qmgr({
      layout: q.layout,
      settings: qmgrSettings(config, new Map([["smtp", 2]])),
      resolve: testResolver,
      deliver: (t, r) => agent.deliver(t, r),
      bounce,
    });
    let maxActive = 0;
    let maxBusy = 0;
    let busy = 0;
    const orig = agent.deliver;
    agent.deliver = async (t, r) => {
      maxActive = Math.max(maxActive, qmgr.activeCount);
      maxBusy = Math.max(maxBusy, ++busy);
      try {
        return await orig(t, r);
      } finally {
        busy--;
      }
    };
    await withLog(async () => {
      await qmgr.start();
      await qmgr.idle();
    });
    qmgr.stop();
    assert(
      maxActive >= 1 && maxActive <= 3,
      `at most 3 four-recipient messages within 10 recipients (${maxActive})`,
    );
    assertEquals(maxBusy, 2, "master.cf's process limit bounds deliveries in flight");
    assertEquals(agent.delivered.length, 24);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test(
  "qmgr suspends a transport whose agent cannot be reached, and F revives dead sites",
  opts,
  async () => {
    const q = await makeQueue();
    const bounce = recordingBounce();
    const agent = new TestAgent(
      q,
      bounce,
      (req) => req.nexthop === "down.test" ? "site-defer" : "sent",
    );
    let reachable = false;
    const normal = agent.deliver;
    agent.deliver = (t, r) => {
      if (!reachable && t === "smtp" && r.nexthop === "gone.test") {
        return Promise.reject(
          new TransportUnavailable("connect to transport private/smtp: Connection refused"),
        );
      }
      return normal(t, r);
    };
    writeMessage(q, { recipients: ["a@gone.test"] });
    const log = await withLog(async (lines) => {
      const qmgr = makeQmgr(q, agent, bounce);
      await qmgr.start();
      await qmgr.idle();
      // While the transport is suspended, new mail for it is deferred untried.
      writeMessage(q, { recipients: ["b@other.test"] });
      await qmgr.trigger("I");
      await qmgr.idle();
      qmgr.stop();
      return lines.join("\n");
    });
    assertStringIncludes(log, "to=<a@gone.test>, relay=none");
    assertStringIncludes(log, "dsn=4.3.0, status=deferred (mail transport unavailable)");
    assertStringIncludes(log, "to=<b@other.test>, relay=none");
    assertEquals(agent.delivered, []);
    assertEquals(queueFiles(q, "deferred").length, 2);
    // F: dead sites may be tried again; A: at once, whatever the retry time.
    reachable = true;
    const qmgr = makeQmgr(q, agent, bounce);
    await withLog(async () => {
      await qmgr.trigger("FA");
      await qmgr.idle();
    });
    qmgr.stop();
    assertEquals(agent.delivered.sort(), ["a@gone.test", "b@other.test"]);
    await Deno.remove(q.dir, { recursive: true });
  },
);

Deno.test("qmgr saves a corrupt queue file to the corrupt queue", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce);
  const path = queueFilePath(q.layout, "incoming", "ABCDEF12345");
  Deno.writeFileSync(path, new Uint8Array([0x43, 0x7f, 0x31]), { mode: 0o700 });
  Deno.chmodSync(path, 0o700);
  const log = await withLog(async (lines) => {
    const qmgr = makeQmgr(q, agent, bounce);
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    return lines.join("\n");
  });
  assertStringIncludes(log, `warning: saving corrupt file "ABCDEF12345" from queue "active"`);
  assertEquals(queueFiles(q, "corrupt"), ["ABCDEF12345"]);
  assertEquals(agent.requests.length, 0);
  await Deno.remove(q.dir, { recursive: true });
});

Deno.test("qmgr refuses a queue file whose size record points nowhere", opts, async () => {
  const q = await makeQueue();
  const bounce = recordingBounce();
  const agent = new TestAgent(q, bounce);
  const fields = [10, 0, 1, 0, 10, 0].map((n) => String(n).padStart(15, " ")).join(" ");
  const path = queueFilePath(q.layout, "incoming", "ABCDEF12346");
  Deno.writeFileSync(
    path,
    joinRecords([
      encodeRecord("C", fields),
      encodeRecord("S", "a@b.test"),
      encodeRecord("R", "c@d.test"),
      encodeRecord("M", ""),
      encodeRecord("X", ""),
      encodeRecord("E", ""),
    ]),
    { mode: 0o700 },
  );
  Deno.chmodSync(path, 0o700);
  const log = await withLog(async (lines) => {
    const qmgr = makeQmgr(q, agent, bounce);
    await qmgr.start();
    await qmgr.idle();
    qmgr.stop();
    return lines.join("\n");
  });
  assertStringIncludes(log, `warning: ABCDEF12346: invalid size record: ${fields}`);
  assertEquals(queueFiles(q, "corrupt"), ["ABCDEF12346"]);
  assertEquals(agent.requests.length, 0);
  await Deno.remove(q.dir, { recursive: true });
});
