// Runs a Posthorn program the way an administrator does, in a child process,
// and returns what it printed. Tests use this for every command-line check.

const root = new URL("..", import.meta.url).pathname;

/** What a program run produced. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for runProgram(). */
export interface RunOptions {
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs `posthorn NAME ARGS...` from source (mod.ts) and collects its output. */
export async function runProgram(
  name: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-ffi", "--unstable-net", `${root}mod.ts`, name, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const data = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    await writer.write(data);
    await writer.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The project's root folder (ends with "/"). */
export const projectRoot: string = root;
