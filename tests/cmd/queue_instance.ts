// A throwaway non-root instance for the submission tests: a config folder
// with main.cf and a queue tree, and helpers to read what landed in maildrop.

import { createQueueTree } from "../../lib/queue/layout.ts";
import { decodeRecords, type QueueRecord } from "../../lib/queue/record.ts";

/** A temporary instance: its folder, config folder, queue folder and maillog. */
export interface Instance {
  dir: string;
  configDir: string;
  queueDir: string;
  maillog: string;
  env: Record<string, string>;
}

/** Creates an instance; `extra` lines go to main.cf. */
export function makeInstance(extra = ""): Instance {
  const dir = Deno.makeTempDirSync({ prefix: "posthorn-queue-" });
  Deno.chmodSync(dir, 0o755);
  const configDir = `${dir}/etc`;
  const queueDir = `${dir}/queue`;
  const maillog = `${dir}/maillog`;
  Deno.mkdirSync(configDir);
  Deno.writeTextFileSync(
    `${configDir}/main.cf`,
    `queue_directory = ${queueDir}\nmaillog_file = ${maillog}\nmaillog_file_prefixes = ${dir}\n` +
      extra,
  );
  createQueueTree({ queueDirectory: queueDir, hashQueueNames: [], hashQueueDepth: 1 });
  return { dir, configDir, queueDir, maillog, env: { MAIL_CONFIG: configDir, TZ: "UTC" } };
}

/** The names of the files in maildrop. */
export function maildropFiles(inst: Instance): string[] {
  return [...Deno.readDirSync(`${inst.queueDir}/maildrop`)].map((e) => e.name).sort();
}

/** The one file in maildrop, as records (fails when there is not exactly one). */
export function onlyMaildropRecords(inst: Instance): QueueRecord[] {
  const files = maildropFiles(inst);
  if (files.length !== 1) throw new Error(`expected one maildrop file, found ${files.length}`);
  return decodeRecords(Deno.readFileSync(`${inst.queueDir}/maildrop/${files[0]}`));
}

/** Records as `type:text` strings, without the arrival-time record. */
export function describeRecords(records: QueueRecord[]): string[] {
  const dec = new TextDecoder();
  return records.filter((r) => r.type !== "T").map((r) => `${r.type}:${dec.decode(r.data)}`);
}

/** Removes the instance. */
export function removeInstance(inst: Instance): void {
  Deno.removeSync(inst.dir, { recursive: true });
}

/** Runs a program like runProgram(), but tolerates a program that stops reading its input early. */
export async function runFeeding(
  name: string,
  args: string[],
  input: Uint8Array,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = new URL("../../", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-ffi", "--unstable-net", `${root}mod.ts`, name, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const writer = child.stdin.getWriter();
  try {
    await writer.write(input);
    await writer.close();
  } catch {
    // The program closed its standard input: what it did is in its status and output.
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
