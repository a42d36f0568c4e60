// A minimal chroot jail for tests: /bin/sh and /bin/cat with the shared
// libraries they need (found with ldd), and a world-writable /work.

/** Builds a jail under a fresh folder; returns its path. */
export async function makeJail(): Promise<string> {
  const jail = await Deno.makeTempDir({ prefix: "pipe-jail-" });
  await Deno.chmod(jail, 0o755);
  const copy = (from: string, to: string) => {
    Deno.mkdirSync(`${jail}${to.slice(0, to.lastIndexOf("/"))}`, { recursive: true });
    Deno.copyFileSync(from, `${jail}${to}`);
    Deno.chmodSync(`${jail}${to}`, 0o755);
  };
  const shell = Deno.realPathSync("/bin/sh");
  copy(shell, "/bin/sh");
  copy(Deno.realPathSync("/bin/cat"), "/bin/cat");
  for (const binary of [shell, "/bin/cat"]) {
    const out = new Deno.Command("ldd", { args: [binary], stdout: "piped", stderr: "null" })
      .outputSync();
    for (const m of new TextDecoder().decode(out.stdout).matchAll(/(\/\S+) \(0x/g)) {
      // The library at the path the binary asks for (ldd shows "name => path" or "path").
      copy(Deno.realPathSync(m[1]), m[1]);
    }
  }
  Deno.mkdirSync(`${jail}/work`);
  Deno.chmodSync(`${jail}/work`, 0o777);
  return jail;
}
