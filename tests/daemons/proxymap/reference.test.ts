// Posthorn's proxy: client against the reference proxymap(8) under the
// reference master (root only, Postfix installed), and the reference
// postmap against Posthorn's proxymap: the same attribute lists, status
// codes and flags, so lookups, sequence and refusals behave the same
// whichever side serves them. Text tables only (texthash, inline): the
// reference's hash files are Berkeley DB.

import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { DictError, openMap } from "../../../maps/mod.ts";
import { closeProxyStreams } from "../../../maps/proxy.ts";
import * as net from "node:net";
import { ProxyService } from "../../../daemons/proxymap/service.ts";
import { serveProxy } from "../../../daemons/proxymap/mod.ts";

const MASTER = "/usr/lib/postfix/sbin/master";
const POSTMAP = "/usr/sbin/postmap";

/** Whether the reference postmap (an executable, not a Posthorn link) is installed. */
function haveReferencePostmap(): boolean {
  try {
    const head = Deno.readFileSync(Deno.realPathSync(POSTMAP)).subarray(0, 4);
    return new TextDecoder().decode(head) === "\x7fELF";
  } catch {
    return false;
  }
}

function canRun(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync(MASTER).isFile &&
      Deno.statSync("/usr/lib/postfix/sbin/proxymap").isFile;
  } catch {
    return false;
  }
}

/** A reference master serving proxymap and proxywrite; main.cf gets `extra`. */
async function startReference(extra: string): Promise<{ dir: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "pm-refinst-" });
  for (const sub of ["queue/pid", "queue/private", "queue/public", "data", "tables"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/tables/text`, "alice@example.com OK\nbob REJECT no bob\n");
  const owned = ["data", "queue/private", "queue/public", "tables"].map((d) => `${dir}/${d}`);
  await new Deno.Command("chown", { args: ["-R", "postfix", ...owned] }).output();
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\ndata_directory = ${dir}/data\n` +
      `syslog_name = postfix-pmtest\ncompatibility_level = 3.6\n${extra.replaceAll("$dir", dir)}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    "proxymap unix - - n - - proxymap\nproxywrite unix - - n - 1 proxymap\n",
  );
  const out = await new Deno.Command(MASTER, {
    args: ["-w"],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`reference master: ${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    dir,
    async stop() {
      closeProxyStreams();
      try {
        const pid = parseInt(Deno.readTextFileSync(`${dir}/queue/pid/master.pid`).trim(), 10);
        if (pid > 0) Deno.kill(pid, "SIGTERM");
        for (let i = 0; i < 50; i++) {
          try {
            Deno.kill(pid, "SIGCONT");
            await new Promise((r) => setTimeout(r, 50));
          } catch {
            break;
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

Deno.test({
  name: "the proxy: client looks up, walks and is refused by the reference proxymap",
  ignore: !canRun(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ref = await startReference(
      "proxy_read_maps = proxy:texthash:$dir/tables/text proxy:inline:{k1=v1}",
    );
    try {
      const config = loadConfig({ configDir: ref.dir });
      const text = openMap(`proxy:texthash:${ref.dir}/tables/text`, { config });
      assertEquals(await text.lookup("alice@example.com"), "OK");
      assertEquals(await text.lookup("BOB"), "REJECT no bob");
      assertEquals(await text.lookup("nobody"), undefined);
      const entries: [string, string][] = [];
      for await (const e of text.sequence()) entries.push(e);
      assertEquals(entries.sort(), [["alice@example.com", "OK"], ["bob", "REJECT no bob"]]);
      const inline = openMap("proxy:inline:{k1=v1}", { config });
      assertEquals(await inline.lookup("k1"), "v1");
      const other = openMap(`proxy:texthash:${ref.dir}/tables/other`, { config });
      const err = await assertRejects(() => other.lookup("x"), DictError);
      assertEquals(
        err.message,
        `proxymap service is not configured for table "texthash:${ref.dir}/tables/other"`,
      );
      const ro = openMap(`proxy:texthash:${ref.dir}/tables/text`, { config, write: true });
      // The reference's proxywrite is not configured for it either.
      const denied = await assertRejects(() => ro.update("k", "v"), DictError);
      assert(denied.message.includes("proxywrite service is not configured"), denied.message);
    } finally {
      await ref.stop();
    }
  },
});

Deno.test({
  name: "the reference postmap looks up through Posthorn's proxymap",
  ignore: !haveReferencePostmap(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pm-refclient-" });
    await Deno.mkdir(`${dir}/queue/private`, { recursive: true });
    await Deno.writeTextFile(`${dir}/text`, "alice OK\nbob REJECT no\n");
    await Deno.writeTextFile(
      `${dir}/main.cf`,
      `queue_directory = ${dir}/queue\ncompatibility_level = 3.6\n` +
        `proxy_read_maps = proxy:texthash:${dir}/text\n`,
    );
    const service = new ProxyService(loadConfig({ configDir: dir }), false);
    const server = net.createServer((conn) => {
      serveProxy(conn, service).finally(() => conn.destroy());
    });
    await new Promise<void>((r) => server.listen(`${dir}/queue/private/proxymap`, () => r()));
    const postmap = async (args: string[], stdin = "") => {
      const child = new Deno.Command(POSTMAP, {
        args,
        env: { MAIL_CONFIG: dir },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
      const out = await child.output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    try {
      assertEquals(await postmap(["-q", "BOB", `proxy:texthash:${dir}/text`]), {
        code: 0,
        stdout: "REJECT no\n",
        stderr: "",
      });
      assertEquals((await postmap(["-q", "nobody", `proxy:texthash:${dir}/text`])).code, 1);
      assertEquals(
        (await postmap(["-q", "-", `proxy:texthash:${dir}/text`], "alice\nzz\nbob\n")).stdout,
        "alice\tOK\nbob\tREJECT no\n",
      );
      assertEquals(await postmap(["-q", "x", `proxy:texthash:${dir}/other`]), {
        code: 1,
        stdout: "",
        stderr:
          `postmap: fatal: proxymap service is not configured for table "texthash:${dir}/other"\n`,
      });
    } finally {
      await new Promise((r) => server.close(r));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
