// Test launcher for instances started by a master: runs trivial-rewrite
// from its module (whether or not mod.ts lists it yet) and hands every
// other program to the shared test launcher.

const [name, ...args] = Deno.args;
if (name === "trivial-rewrite") {
  const { main } = await import("../../../daemons/trivial_rewrite/mod.ts");
  const { FatalError } = await import("../../../lib/log.ts");
  let status = 1;
  try {
    status = await main(args, { name, program: name });
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
  }
  Deno.exit(status);
} else {
  await import("../../fixtures/daemons/launch.ts");
}
