// The reference postqueue -s and -i against Posthorn's flush service: the
// same attribute lists and status codes, so the reference's clients get
// their answers (and their own diagnostics) from Posthorn's server.

import * as net from "node:net";
import { assertEquals } from "../../assert.ts";
import { loadConfig } from "../../../lib/config/mod.ts";
import { layoutFromConfig } from "../../../lib/queue/layout.ts";
import { flushEnvFromConfig } from "../../../daemons/flush/service.ts";
import { serveFlush } from "../../../daemons/flush/mod.ts";

const POSTQUEUE = "/usr/sbin/postqueue";

/** Whether the reference postqueue (an executable, not a Posthorn link) is installed. */
function haveReferencePostqueue(): boolean {
  try {
    const head = Deno.readFileSync(Deno.realPathSync(POSTQUEUE)).subarray(0, 4);
    return new TextDecoder().decode(head) === "\x7fELF";
  } catch {
    return false;
  }
}

Deno.test({
  name: "the reference postqueue -s and -i are served by Posthorn's flush",
  ignore: !haveReferencePostqueue(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flush-refclient-" });
    await Deno.chmod(dir, 0o755);
    for (const q of ["deferred", "incoming", "flush", "public"]) {
      await Deno.mkdir(`${dir}/queue/${q}`, { recursive: true });
    }
    await Deno.writeTextFile(
      `${dir}/main.cf`,
      `queue_directory = ${dir}/queue\ncompatibility_level = 3.6\n` +
        "fast_flush_domains = example.com\nhash_queue_names = defer\n",
    );
    await Deno.writeTextFile(`${dir}/queue/deferred/ABCDEF123`, "x", { mode: 0o700 });
    await Deno.writeTextFile(`${dir}/queue/flush/example_com`, "ABCDEF123\n");
    const config = loadConfig({ configDir: dir });
    const env = flushEnvFromConfig(config, layoutFromConfig(config));
    const triggers: string[] = [];
    env.trigger = (t) => {
      triggers.push(t);
      return Promise.resolve();
    };
    const server = net.createServer((conn) => {
      serveFlush(conn, env, 5000).finally(() => conn.end());
    });
    await new Promise<void>((r) => server.listen(`${dir}/queue/public/flush`, () => r()));
    const postqueue = async (args: string[]) => {
      const out = await new Deno.Command(POSTQUEUE, {
        args,
        env: { MAIL_CONFIG: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    try {
      assertEquals(await postqueue(["-s", "example.com"]), { code: 0, stderr: "" });
      assertEquals([...Deno.readDirSync(`${dir}/queue/incoming`)].map((e) => e.name), [
        "ABCDEF123",
      ]);
      assertEquals(triggers, ["F", "I"]);
      assertEquals(await postqueue(["-i", "NOSUCH1"]), { code: 0, stderr: "" });
      const denied = await postqueue(["-s", "other.example"]);
      assertEquals(denied, {
        code: 69,
        stderr:
          'postqueue: fatal: Flush service is not configured for destination "other.example"\n',
      });
    } finally {
      await new Promise((r) => server.close(r));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
