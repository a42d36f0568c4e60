// oqmgr, the old queue manager: the same program as qmgr without nqmgr's
// preemptive job scheduling, running as master.cf's queue manager.

import { assert, assertEquals } from "../../assert.ts";
import { projectRoot, runProgram } from "../../run.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { configFromText } from "../../../lib/config/mod.ts";
import { withoutPreemption } from "../../../daemons/qmgr/mod.ts";
import { qmgrSettings } from "../../../daemons/qmgr/settings.ts";

const launcher = `${projectRoot}tests/daemons/qmgr/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

Deno.test("oqmgr runs as master.cf's queue manager and delivers under its own name", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const inst = await Instance.create(
    `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       oqmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       1       discard
`,
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "default_transport = discard:gone",
      "hash_queue_names =",
    ].join("\n"),
  );
  try {
    const start = await inst.postfix("start");
    assertEquals(start.code, 0, start.stderr);
    for (const n of [1, 2, 3]) {
      const sent = await runProgram("sendmail", ["-f", "a@example.com", `r${n}@remote.example`], {
        stdin: `Subject: ${n}\n\nBody ${n}.\n`,
        env: { MAIL_CONFIG: inst.dir },
      });
      assertEquals(sent.code, 0, sent.stderr);
    }
    await runProgram("postkick", ["-c", inst.dir, "public", "pickup", "W"], {}).catch(() => {});
    const done = await waitFor(
      () =>
        (inst.readLog().match(
          /postfix\/discard\[\d+\]: \w+: to=<r\d@remote\.example>.*status=sent/g,
        ) ?? [])
          .length === 3,
      45_000,
    );
    const log = inst.readLog();
    assert(done, log);
    // The queue manager logs under its own name.
    assert(
      /postfix\/oqmgr\[\d+\]: \w+: from=<a@example\.com>, size=\d+, nrcpt=1 \(queue active\)/.test(
        log,
      ),
      log,
    );
    assert(/postfix\/oqmgr\[\d+\]: \w+: removed/.test(log), log);
    assertEquals(log.match(/warning|fatal|panic/g), null, log);
  } finally {
    await inst.destroy();
  }
});

Deno.test("oqmgr's settings have no delivery slot cost: no job preemption", () => {
  const config = configFromText("/nonexistent", "smtp_delivery_slot_cost = 5\n");
  const old = withoutPreemption(qmgrSettings(config, new Map()));
  assertEquals(qmgrSettings(config, new Map()).transport("smtp").slotCost, 5);
  assertEquals(old.transport("smtp").slotCost, 0);
  assertEquals(
    old.transport("smtp").rcptLimit,
    qmgrSettings(config, new Map()).transport("smtp").rcptLimit,
  );
});
