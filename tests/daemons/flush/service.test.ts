// flush(8)'s requests on a temporary queue: logfile names and contents as the
// reference writes them, send_site/send_file moving deferred mail to incoming
// with fresh times, refresh and purge, and the status codes.

import { assert, assertEquals } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { layoutFromConfig, queueFilePath } from "../../../lib/queue/layout.ts";
import { FlushStatus } from "../../../lib/flush_client.ts";
import {
  addService,
  type FlushEnv,
  flushEnvFromConfig,
  refreshService,
  sendFileService,
  sendSiteService,
} from "../../../daemons/flush/service.ts";

/** A queue with deferred/incoming/flush and an environment whose triggers are recorded. */
async function setup(extra = ""): Promise<{ env: FlushEnv; dir: string; triggers: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "posthorn-flush-" });
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    [
      `queue_directory = ${dir}/queue`,
      "fast_flush_domains = example.com, Ünï.de, a-b.c",
      extra || "hash_queue_names = deferred\nhash_queue_depth = 1",
    ].join("\n") + "\n",
  );
  for (const q of ["deferred", "incoming", "flush"]) {
    await Deno.mkdir(`${dir}/queue/${q}`, { recursive: true });
  }
  const config = loadConfig({ configDir: dir });
  const env = flushEnvFromConfig(config, layoutFromConfig(config));
  const triggers: string[] = [];
  env.trigger = (letters) => {
    triggers.push(letters);
    return Promise.resolve();
  };
  return { env, dir, triggers };
}

/** Puts a complete (mode 0700) deferred file whose retry time is an hour away. */
function deferred(env: FlushEnv, id: string): string {
  const path = queueFilePath(env.layout, "deferred", id);
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(path, "x", { mode: 0o700 });
  const later = new Date(Date.now() + 3600_000);
  Deno.utimeSync(path, later, later);
  return path;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("add writes the queue id to the site's logfile, named as the reference names it", async () => {
  const { env, dir } = await setup();
  try {
    assertEquals(await addService(env, "example.com", "ABCDEF123"), FlushStatus.ok);
    assertEquals(await addService(env, "EXAMPLE.COM", "AAA2"), FlushStatus.ok);
    assertEquals(await addService(env, "sub.example.com", "AAA5"), FlushStatus.ok);
    assertEquals(await addService(env, "Ünï.de", "AAA3"), FlushStatus.ok);
    assertEquals(await addService(env, "a-b.c", "AAA4"), FlushStatus.ok);
    const flush = `${dir}/queue/flush`;
    assertEquals(Deno.readTextFileSync(`${flush}/example_com`), "ABCDEF123\nAAA2\n");
    assertEquals(Deno.readTextFileSync(`${flush}/sub_example_com`), "AAA5\n");
    assertEquals(Deno.readTextFileSync(`${flush}/xn__n_nga1b_de`), "AAA3\n");
    assertEquals(Deno.readTextFileSync(`${flush}/a_b_c`), "AAA4\n");
    assertEquals(Deno.statSync(`${flush}/example_com`).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("add refuses a site outside fast_flush_domains (DENY) and a bad queue id (BAD)", async () => {
  const { env, dir } = await setup();
  try {
    assertEquals(await addService(env, "other.org", "AAA6"), FlushStatus.deny);
    assertEquals(await addService(env, "bad site", "AAA6"), FlushStatus.deny);
    assertEquals(await addService(env, "example.com", "bad/id"), FlushStatus.bad);
    assertEquals(await addService(env, "example.com", "a.b"), FlushStatus.bad);
    assertEquals([...Deno.readDirSync(`${dir}/queue/flush`)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logfiles are hashed into subfolders when hash_queue_names lists flush", async () => {
  const { env, dir } = await setup("hash_queue_names = deferred, flush\nhash_queue_depth = 2");
  try {
    assertEquals(await addService(env, "example.com", "AAA1"), FlushStatus.ok);
    assertEquals(Deno.readTextFileSync(`${dir}/queue/flush/e/x/example_com`), "AAA1\n");
    const a = deferred(env, "AAA1");
    assertEquals(await sendSiteService(env, "example.com"), FlushStatus.ok);
    assert(!exists(a));
    assert(exists(queueFilePath(env.layout, "incoming", "AAA1")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("send_site moves the site's deferred mail to incoming, touched, and wakes qmgr", async () => {
  const { env, dir, triggers } = await setup();
  try {
    const a1 = deferred(env, "A1B2C3");
    const a2 = deferred(env, "D4E5F6");
    const other = deferred(env, "F0F0F0");
    await addService(env, "example.com", "A1B2C3");
    await addService(env, "example.com", "D4E5F6");
    await addService(env, "example.com", "A1B2C3");
    await addService(env, "example.com", "AB0000"); // no longer queued
    await addService(env, "a-b.c", "F0F0F0");
    const before = Date.now();
    assertEquals(await sendSiteService(env, "example.com"), FlushStatus.ok);
    for (const [from, id] of [[a1, "A1B2C3"], [a2, "D4E5F6"]]) {
      assert(!exists(from), `${id} still deferred`);
      const st = Deno.statSync(`${dir}/queue/incoming/${id}`);
      assert(st.mtime!.getTime() <= Date.now() && st.mtime!.getTime() >= before - 1000);
    }
    // The other site's message stays deferred with its retry time.
    assert(exists(other));
    assert(Deno.statSync(other).mtime!.getTime() > Date.now() + 3000_000);
    assertEquals(Deno.readTextFileSync(`${dir}/queue/flush/example_com`), "");
    assertEquals(triggers, ["F", "I"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("send_site for an eligible site without a logfile succeeds; others are denied", async () => {
  const { env, dir } = await setup();
  try {
    assertEquals(await sendSiteService(env, "a-b.c"), FlushStatus.ok);
    assertEquals(await sendSiteService(env, "other.org"), FlushStatus.deny);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("send_file moves one deferred message; an unknown id is fine, a bad one is BAD", async () => {
  const { env, dir, triggers } = await setup();
  try {
    const path = deferred(env, "BBB111");
    assertEquals(await sendFileService(env, "BBB111"), FlushStatus.ok);
    assert(!exists(path));
    assert(exists(`${dir}/queue/incoming/BBB111`));
    assertEquals(triggers, ["I"]);
    assertEquals(await sendFileService(env, "NOSUCH1"), FlushStatus.ok);
    assertEquals(triggers, ["I"]);
    assertEquals(await sendFileService(env, "bad/x"), FlushStatus.bad);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refresh sends logfiles unread for fast_flush_refresh_time and purges old empty ones", async () => {
  const { env, dir } = await setup();
  try {
    const stale = deferred(env, "CCC111");
    const fresh = deferred(env, "DDD111");
    await addService(env, "example.com", "CCC111");
    await addService(env, "a-b.c", "DDD111");
    await addService(env, "sub.example.com", "EEE111");
    const flush = `${dir}/queue/flush`;
    const old = new Date(Date.now() - 13 * 3600_000);
    Deno.utimeSync(`${flush}/example_com`, old, old);
    // An empty logfile left alone for 8 days goes; one emptied recently stays.
    Deno.writeTextFileSync(`${flush}/gone_example`, "");
    const week = new Date(Date.now() - 8 * 86400_000);
    Deno.utimeSync(`${flush}/gone_example`, week, week);
    Deno.writeTextFileSync(`${flush}/kept_example`, "");
    assertEquals(await refreshService(env, false), FlushStatus.ok);
    assert(!exists(stale), "a logfile unread for 13 hours was not sent");
    assert(exists(fresh), "a logfile read just now was sent");
    assertEquals(Deno.readTextFileSync(`${flush}/example_com`), "");
    assertEquals(Deno.readTextFileSync(`${flush}/a_b_c`), "DDD111\n");
    assert(!exists(`${flush}/gone_example`));
    assert(exists(`${flush}/kept_example`));
    // purge sends every non-empty logfile whatever its age.
    assertEquals(await refreshService(env, true), FlushStatus.ok);
    assert(!exists(fresh));
    assert(exists(`${dir}/queue/incoming/DDD111`));
    assertEquals(Deno.readTextFileSync(`${flush}/a_b_c`), "");
    assertEquals(Deno.readTextFileSync(`${flush}/sub_example_com`), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
