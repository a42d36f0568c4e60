// A trivial-rewrite service in a child process on its own socket (-L), in a
// fresh folder laid out as an instance: main.cf, queue/private/rewrite,
// maillog. Clients reach it through lib/rewrite_client.ts with `config`.

import { type Config, loadConfig } from "../../../lib/config/mod.ts";
import { projectRoot } from "../../run.ts";

/** A running service. */
export interface RewriteService {
  dir: string;
  socket: string;
  config: Config;
  child: Deno.ChildProcess;
  /** What the service logged so far. */
  maillog(): string;
  stop(): Promise<void>;
}

/** Starts the service with `mainCf` added to a base configuration and `files` beside main.cf. */
export async function startService(
  mainCf: string,
  files: Record<string, string> = {},
  dir?: string,
): Promise<RewriteService> {
  dir ??= await Deno.makeTempDir({ prefix: "tr-svc-" });
  await Deno.mkdir(`${dir}/queue/private`, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("$dir", dir));
  }
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `queue_directory = ${dir}/queue\nmaillog_file = ${dir}/maillog\n` +
      mainCf.replaceAll("$dir", dir),
  );
  const socket = `${dir}/queue/private/rewrite`;
  try {
    Deno.removeSync(socket);
  } catch {
    // First start.
  }
  const script = `${dir}/run.ts`;
  await Deno.writeTextFile(
    script,
    `import { main } from "${projectRoot}daemons/trivial_rewrite/mod.ts";\n` +
      `Deno.exit(await main(Deno.args, { name: "trivial-rewrite", program: "trivial-rewrite" }));\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-ffi",
      "--unstable-net",
      script,
      "-n",
      "rewrite",
      "-L",
      `unix:${socket}`,
    ],
    env: { MAIL_CONFIG: dir },
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 400; i++) {
    try {
      Deno.statSync(socket);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const config = loadConfig({ configDir: dir });
  const where = dir;
  return {
    dir,
    socket,
    config,
    child,
    maillog: () => {
      try {
        return Deno.readTextFileSync(`${where}/maillog`);
      } catch {
        return "";
      }
    },
    stop: async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}
