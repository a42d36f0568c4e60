// scache: the connection cache keeps descriptors by endpoint and binds
// destinations to endpoints; under a real master, lib/scache_client.ts saves
// a connection (a pipe's write end here), finds it again by destination and
// by endpoint, sees it expire after its ttl, and the statistics lines appear.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../assert.ts";
import { Instance, waitFor } from "../master/instance.ts";
import { ScacheState } from "../../../daemons/scache/mod.ts";
import { ScacheClient } from "../../../lib/scache_client.ts";
import { captureLog } from "../../../lib/log.ts";
import {
  closeFd,
  connectUnix,
  makePipe,
  POLLIN,
  pollSync,
  readFd,
  writeFd,
} from "../../../lib/ffi/libc.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Writes `text` to `w` and reads it back from `r`. */
function through(w: number, r: number, text: string): string {
  writeFd(w, enc.encode(text));
  pollSync([{ fd: r, events: POLLIN }], 2000);
  const buf = new Uint8Array(100);
  const n = readFd(r, buf);
  return dec.decode(buf.subarray(0, Math.max(n, 0)));
}

Deno.test({
  ...opts,
  name: "ScacheState hands out the newest connection per endpoint and counts hits and misses",
  fn() {
    const state = new ScacheState(60);
    const [r1, w1] = makePipe();
    const [r2, w2] = makePipe();
    state.saveEndp(30, "smtp:192.0.2.1:25", "p1", w1);
    state.saveEndp(30, "smtp:192.0.2.1:25", "p2", w2);
    state.saveDest(30, "smtp:example.com:25", "d", "smtp:192.0.2.1:25");
    assertEquals(state.size(), { dest: 1, endp: 1, sess: 2 });
    const a = state.findDest("smtp:example.com:25");
    assertEquals(a, { fd: w2, destProp: "d", endpProp: "p2" });
    const b = state.findEndp("smtp:192.0.2.1:25");
    assertEquals(b, { fd: w1, prop: "p1" });
    assertEquals(state.findDest("smtp:example.com:25"), undefined);
    assertEquals(state.findEndp("smtp:192.0.2.1:25"), undefined);
    assertEquals(state.findDest("smtp:other:25"), undefined);
    const lines = state.statistics();
    assertMatch(lines[0], /^statistics: start interval [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d$/);
    assertEquals(lines.slice(1), [
      "statistics: domain lookup hits=1 miss=2 success=33%",
      "statistics: address lookup hits=1 miss=1 success=50%",
      "statistics: max simultaneous domains=1 addresses=1 connection=2",
    ]);
    assertEquals(state.statistics(), []);
    state.clear();
    for (const fd of [r1, w1, r2, w2]) closeFd(fd);
  },
});

Deno.test({
  ...opts,
  name: "scache under the master caches a passed descriptor, hands it back and expires it",
  async fn() {
    const inst = await Instance.create(
      "scache unix - - n - 1 scache\n",
      "connection_cache_ttl_limit = 1s\nconnection_cache_status_update_time = 1s\n",
    );
    const lines: string[] = [];
    captureLog((l) => lines.push(l));
    try {
      const started = await inst.postfix("start");
      assertEquals(started.code, 0, started.stderr);
      const cache = new ScacheClient(`${inst.queue}/private/scache`, 5000);

      // Save, then find by destination: the descriptor works on our side again.
      const [r, w] = makePipe();
      assert(
        await cache.save(
          "smtp:example.com:25",
          "smtp:192.0.2.1:25",
          {
            dest: "dprop",
            endp: "eprop",
          },
          w,
          60,
        ),
      );
      closeFd(w);
      const hit = await cache.findDest("smtp:example.com:25");
      assert(hit);
      assertEquals([hit.destProp, hit.endpProp], ["dprop", "eprop"]);
      assertEquals(through(hit.fd, r, "hello"), "hello");
      assertEquals(await cache.findDest("smtp:example.com:25"), null);

      // Saved again and found by endpoint.
      assert(await cache.saveEndp(60, "smtp:192.0.2.1:25", "again", hit.fd));
      closeFd(hit.fd);
      const byEndp = await cache.findEndp("smtp:192.0.2.1:25");
      assertEquals(byEndp?.endpProp, "again");
      assertEquals(through(byEndp!.fd, r, "x"), "x");

      // The ttl (capped by connection_cache_ttl_limit = 1s) closes the cached copy.
      assert(await cache.saveEndp(60, "smtp:192.0.2.1:25", "", byEndp!.fd));
      closeFd(byEndp!.fd);
      const eof = await waitFor(() => {
        const buf = new Uint8Array(10);
        return pollSync([{ fd: r, events: POLLIN }], 0) > 0 && readFd(r, buf) === 0;
      }, 5000);
      assert(eof, "the expired connection was not closed");
      assertEquals(await cache.findEndp("smtp:192.0.2.1:25"), null);
      closeFd(r);

      // A bad request gets status 1 and a warning.
      const raw = connectUnix(`${inst.queue}/private/scache`);
      writeFd(raw, enc.encode("request\0bogus\0\0"));
      pollSync([{ fd: raw, events: POLLIN }], 5000);
      const buf = new Uint8Array(100);
      const n = readFd(raw, buf);
      assertEquals(dec.decode(buf.subarray(0, n)), "status\x001\0\0");
      closeFd(raw);
      cache.close();

      // The counts may fall into more than one interval: add them up.
      const totals = (log: string, kind: string) => {
        let hits = 0, miss = 0;
        for (const m of log.matchAll(new RegExp(`${kind} lookup hits=(\\d+) miss=(\\d+)`, "g"))) {
          hits += Number(m[1]);
          miss += Number(m[2]);
        }
        return `${hits}/${miss}`;
      };
      const log = await waitFor(() => {
        const text = inst.readLog();
        return totals(text, "domain") === "1/1" && totals(text, "address") === "1/1" && text;
      }, 5000) as string;
      assert(log, inst.readLog());
      assertStringIncludes(log, "postfix/scache[");
      assertStringIncludes(log, 'warning: unrecognized request: "bogus", ignored');
      assertMatch(log, /statistics: (domain|address) lookup hits=\d+ miss=\d+ success=\d+%/);
      assertMatch(log, /statistics: max simultaneous domains=1 addresses=1 connection=1/);
      assertEquals(lines.filter((l) => l.includes("warning")), []);
    } finally {
      captureLog(undefined);
      await inst.destroy();
    }
  },
});
