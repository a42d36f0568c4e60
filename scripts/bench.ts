// deno task bench: runs every benchmark module in scripts/bench/ (or those
// named on the command line) and prints their figures. Benchmarks print; they
// never pass or fail on time.
//
// A benchmark module exports `bench(): Promise<void>`, which prints its own
// lines; where the reference Postfix is installed it prints the reference's
// figure for the same work beside Posthorn's.

const dir = new URL("./bench/", import.meta.url);
const wanted = new Set(Deno.args);
const names: string[] = [];
for await (const entry of Deno.readDir(dir)) {
  if (entry.isFile && entry.name.endsWith(".ts")) names.push(entry.name);
}
names.sort();
for (const name of names) {
  const area = name.replace(/\.ts$/, "");
  if (wanted.size && !wanted.has(area)) continue;
  const module = await import(new URL(name, dir).href);
  // Helpers beside the benchmarks (a profiling aid) export no bench().
  if (typeof module.bench !== "function") continue;
  console.log(`== ${area}`);
  await module.bench();
}
