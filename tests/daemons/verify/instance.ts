// A whole instance for the verify, trace-report and delay-warning tests:
// master, pickup, cleanup, qmgr, trivial-rewrite, bounce/defer/trace,
// verify, and the error, retry and discard agents. Transports by domain:
// ok.example is discarded ("delivered nowhere"), bad.example bounces,
// later.example is deferred, and sender.example (where notices go) is held
// back in the deferred queue so the test can read what was sent.

import { projectRoot } from "../../run.ts";
import { Instance } from "../master/instance.ts";

const launcher = `${projectRoot}tests/daemons/verify/launch.ts`;
const flags = "run -A --unstable-ffi --unstable-net";

const masterCf = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
keep      unix  -       -       n       -       -       discard
`;

/** Starts an instance; `extra` lines go to main.cf. */
export async function startInstance(extra: string[] = []): Promise<Instance> {
  const inst = await Instance.create(
    masterCf,
    [
      `posthorn_launcher = ${Deno.execPath()} ${flags} ${launcher}`,
      "myhostname = mx.example.com",
      "mydomain = example.com",
      "myorigin = example.com",
      "mydestination =",
      "default_transport = discard:delivered nowhere",
      "defer_transports = keep",
      "hash_queue_names =",
      ...extra,
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${inst.dir}/main.cf`,
    `transport_maps = texthash:${inst.dir}/transport\n`,
    {
      append: true,
    },
  );
  await Deno.writeTextFile(
    `${inst.dir}/transport`,
    "bad.example error:5.1.1 no such user here\n" +
      "later.example retry:4.4.1 try again later\n" +
      "sender.example keep:kept\n",
  );
  const start = await inst.postfix("start");
  if (start.code !== 0) {
    await inst.destroy();
    throw new Error(`postfix start: ${start.stderr}`);
  }
  return inst;
}

/** Queue files of a queue folder (ids). */
export function queueIds(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) out.push(...queueIds(`${dir}/${e.name}`));
      else out.push(e.name);
    }
  } catch {
    // No such folder.
  }
  return out;
}
