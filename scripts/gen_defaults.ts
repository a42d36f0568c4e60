// Regenerates the parameter table in lib/config/ from the reference Postfix 3.7:
//
//   lib/config/defaults.ts    name → default, from tests/golden/postconf/postconf-d-builtin.ref
//                             (the reference's `postconf -d` beside an empty master.cf,
//                             computed values masked)
//   lib/config/bounce_defaults.ts  the built-in bounce(5) templates, from the
//                             reference's `postconf -t ""`
//   lib/config/parameters.ts  name → type (string, boolean, integer, time with its
//                             default unit, size, list) and the programs that read
//                             it, from the reference's man pages: postconf(5) for
//                             types and units, each program's CONFIGURATION
//                             PARAMETERS section for readers
//
// deno run -A scripts/gen_defaults.ts [MANDIR]      (MANDIR defaults to /usr/share/man)
//
// Posthorn's own differences are applied here, in one visible place.

import { gunzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const manDir = Deno.args[0] ?? "/usr/share/man";
const golden = `${root}tests/golden/postconf/`;
const referencePostconf = "/usr/sbin/postconf";

// postconf-d.ref is the reference's `postconf -d` beside its own master.cf, so
// it also lists service-defined parameters (relay_destination_concurrency_limit
// for a "relay" smtp service...). The built-in table comes from the reference
// run beside an empty master.cf, kept as postconf-d-builtin.ref, with the
// host's computed values masked as in postconf-d.ref.
try {
  Deno.statSync(referencePostconf);
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/main.cf`, "");
  Deno.writeTextFileSync(`${dir}/master.cf`, "");
  const out = new Deno.Command(referencePostconf, { args: ["-c", dir, "-d"], stderr: "null" })
    .outputSync();
  Deno.removeSync(dir, { recursive: true });
  const masked = new TextDecoder().decode(out.stdout)
    .replace(/^(mydomain|myhostname|mynetworks|process_id) = .*$/gm, "$1 = <computed>");
  if (out.success && masked.length > 0) {
    Deno.writeTextFileSync(`${golden}postconf-d-builtin.ref`, masked);
  }
} catch {
  // no reference: keep the stored answer
}
const ref = await Deno.readTextFile(`${golden}postconf-d-builtin.ref`);

/** Values Posthorn sets differently from the reference, and why. */
const posthornValues: Record<string, string> = {
  mail_name: "Posthorn", // the product's name in banners and DSNs
  // A runtime process costs 0.08-0.3 s of CPU to start where Postfix forks in
  // about a millisecond: restarting every 100 clients was ~45% of the relay's
  // CPU. max_use still bounds a process's life, just less often.
  max_use: "10000",
};

/** Reads a man page, gzipped or not; undefined when absent. */
function readMan(path: string): string | undefined {
  for (const candidate of [path, `${path}.gz`]) {
    try {
      const data = Deno.readFileSync(candidate);
      return new TextDecoder().decode(candidate.endsWith(".gz") ? gunzipSync(data) : data);
    } catch {
      // try the next form
    }
  }
  return undefined;
}

/** Drops roff escapes and requests so descriptions read as text. */
function plain(roff: string): string {
  return roff
    .split("\n")
    .filter((l) => !l.startsWith("."))
    .join(" ")
    .replace(/\\f[BIRP]/g, "")
    .replace(/\\-/g, "-")
    .replace(/\\e/g, "\\")
    .replace(/\s+/g, " ");
}

// --- defaults -------------------------------------------------------------

const entries: [string, string][] = [];
const computed: string[] = [];
for (const line of ref.split("\n")) {
  const m = /^(\S+) = ?(.*)$/.exec(line);
  if (!m) continue;
  const [, name, value] = m;
  if (value === "<computed>") {
    computed.push(name);
    continue; // computed at run time in lib/config
  }
  entries.push([name, posthornValues[name] ?? value]);
}
const defaultValue = new Map(entries);

// --- descriptions from postconf(5) -----------------------------------------

const postconf5 = readMan(`${manDir}/man5/postconf.5`);
if (!postconf5) {
  console.error(
    `gen_defaults: cannot read ${manDir}/man5/postconf.5(.gz): reference not installed`,
  );
  Deno.exit(1);
}
const description = new Map<string, string>();
for (const section of postconf5.split(/^\.SH /m).slice(1)) {
  const nl = section.indexOf("\n");
  const head = section.slice(0, nl).replace(/\\-/g, "-");
  const m = /^"?([A-Za-z0-9_]+) \((?:default: |read-only)/.exec(head);
  if (m) description.set(m[1], plain(section.slice(nl + 1)));
}

// --- readers from the programs' man pages ----------------------------------

/** Program (as Posthorn names it) → man page path without .gz. */
const programPages: Record<string, string> = {};
for (const section of ["man1", "man8"]) {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(`${manDir}/${section}`)].map((e) => e.name);
  } catch {
    continue;
  }
  for (const file of names) {
    const m = /^([a-z-]+)\.(1|8postfix)(\.gz)?$/.exec(file);
    if (!m) continue;
    if (section === "man1" && !/^(post|sendmail|mailq|newaliases)/.test(m[1])) continue;
    programPages[m[1]] = `${manDir}/${section}/${file.replace(/\.gz$/, "")}`;
  }
}
const readers = new Map<string, Set<string>>();
for (const [program, path] of Object.entries(programPages).sort()) {
  const text = readMan(path);
  if (!text) continue;
  const at = text.search(/^\.SH "?CONFIGURATION PARAMETERS/m);
  if (at < 0) continue;
  for (const m of text.slice(at).matchAll(/^\.IP "\\fB([A-Za-z0-9_]+) \(/gm)) {
    if (!readers.has(m[1])) readers.set(m[1], new Set());
    readers.get(m[1])!.add(program);
  }
}

// The LMTP client shares smtp(8)'s page, which lists smtp_ names only: an
// lmtp_ parameter is read by lmtp where its smtp_ twin is read by smtp.
for (const name of [...defaultValue.keys()]) {
  const twin = name.startsWith("lmtp_") ? `smtp_${name.slice(5)}` : "";
  if (twin && !readers.has(name) && readers.get(twin)?.has("smtp")) {
    readers.set(name, new Set(["lmtp"]));
  }
}

// --- raw parameters ---------------------------------------------------------
// Parameters whose values postconf -x leaves unexpanded (they hold macros the
// programs expand at delivery time). Found by asking the reference, when
// installed: set every parameter to "$mail_version" and see which stay so; the
// answer is kept in tests/golden/postconf/raw-parameters.ref.

const rawRef = `${golden}raw-parameters.ref`;
try {
  Deno.statSync(referencePostconf);
  const dir = Deno.makeTempDirSync();
  const probe = [...defaultValue.keys(), ...computed].filter((n) => n !== "mail_version");
  Deno.writeTextFileSync(`${dir}/main.cf`, probe.map((n) => `${n} = $mail_version\n`).join(""));
  Deno.writeTextFileSync(`${dir}/master.cf`, "");
  const out = new Deno.Command(referencePostconf, { args: ["-c", dir, "-nx"], stderr: "null" })
    .outputSync();
  Deno.removeSync(dir, { recursive: true });
  const names = new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.endsWith(" = $mail_version")).map((l) => l.split(" ")[0]);
  Deno.writeTextFileSync(rawRef, names.join("\n") + "\n");
} catch {
  // no reference: keep the stored answer
}
const raw = new Set(Deno.readTextFileSync(rawRef).split("\n").filter(Boolean));

// --- types -------------------------------------------------------------------

type ParamType = "string" | "boolean" | "integer" | "time" | "size" | "list";
interface Info {
  type: ParamType;
  unit?: string;
}

const unitWords: Record<string, string> = {
  seconds: "s",
  minutes: "m",
  hours: "h",
  days: "d",
  weeks: "w",
};

/** The type postconf(5)'s description and the default value imply, before $name references. */
function ownType(name: string, value: string, text: string): Info | undefined {
  if (/time unit/i.test(text)) {
    const said = /default time unit is ([smhdw])\b(?: \(|\.|$)|default time unit is (\w+)/i.exec(
      text,
    );
    let unit = said ? (said[1] ?? unitWords[said[2].toLowerCase()] ?? "s") : undefined;
    unit ??= /^\d+([smhdw])$/.exec(value)?.[1] ?? "s";
    return { type: "time", unit };
  }
  if (/^(yes|no|true|false)$/i.test(value)) return { type: "boolean" };
  if (/^-?\d+$/.test(value)) {
    return /\bbytes\b/i.test(text) || /_size(_limit)?$/.test(name)
      ? { type: "size" }
      : { type: "integer" };
  }
  if (/^\$[a-z0-9_]+$|^\$\{[a-z0-9_]+\}$/.test(value)) return undefined; // follow the reference
  if (
    /\blist of\b|separated by (comma|whitespace|space)|comma or (white)?space|whitespace or comma/i
      .test(text) ||
    /_(maps|restrictions|checks|networks|classes|domains|directories)$/.test(name) ||
    value.includes(",")
  ) {
    return { type: "list" };
  }
  return { type: "string" };
}

const info = new Map<string, Info | undefined>();
const allNames = [...defaultValue.keys(), ...computed].sort();
for (const name of allNames) {
  info.set(name, ownType(name, defaultValue.get(name) ?? "", description.get(name) ?? ""));
}
/** Resolves a default of the form $other to other's type. */
function resolve(name: string, seen = new Set<string>()): Info {
  const own = info.get(name);
  if (own) return own;
  const ref = /^\$\{?([a-z0-9_]+)\}?$/.exec(defaultValue.get(name) ?? "")?.[1];
  if (!ref || seen.has(name) || !info.has(ref)) return { type: "string" };
  seen.add(name);
  return resolve(ref, seen);
}

/** Computed parameters' types: host names and process facts are strings, mynetworks a list. */
const computedTypes: Record<string, Info> = {
  mynetworks: { type: "list" },
  process_id: { type: "string" },
};

const rows = allNames.map((name) => {
  const t = computedTypes[name] ?? resolve(name);
  const who = [...(readers.get(name) ?? [])].sort();
  const parts = [`type: "${t.type}"`];
  if (t.type === "time") parts.push(`unit: "${t.unit}"`);
  if (raw.has(name)) parts.push("raw: true");
  parts.push(`readers: ${JSON.stringify(who).replaceAll(",", ", ")}`);
  return `  ${JSON.stringify(name)}: { ${parts.join(", ")} },`;
});

const body = entries.map(([n, v]) => `  ${JSON.stringify(n)}: ${JSON.stringify(v)},`).join("\n");
await Deno.writeTextFile(
  `${root}lib/config/defaults.ts`,
  `// Generated by scripts/gen_defaults.ts from the reference's postconf -d: do not edit.
// Every Postfix 3.7 parameter's default value; computed ones (myhostname,
// mydomain, mynetworks, process_id) are derived in lib/config/mod.ts.

/** Parameter name → default value, unexpanded. */
export const defaults: Readonly<Record<string, string>> = {
${body}
};
`,
);

await Deno.writeTextFile(
  `${root}lib/config/parameters.ts`,
  `// Generated by scripts/gen_defaults.ts from the reference's man pages: do not edit.
// Every Postfix 3.7 parameter's type (from postconf(5): "time unit" wording,
// yes/no and numeric defaults, list wording) with a time parameter's default
// unit, and the programs whose man page lists it among their configuration
// parameters. A default of the form $other takes other's type.

/** A parameter's value type. */
export type ParameterType = "string" | "boolean" | "integer" | "time" | "size" | "list";

/** What the table knows about one parameter. */
export interface ParameterInfo {
  type: ParameterType;
  /** For time parameters: the unit of a bare number (s, m, h, d or w). */
  unit?: string;
  /** Left unexpanded by postconf -x (the value holds delivery-time macros). */
  raw?: boolean;
  /** Programs that read it, by their man pages (may be empty). */
  readers: string[];
}

/** Parameter name → type, unit and readers. */
export const parameters: Readonly<Record<string, ParameterInfo>> = {
${rows.join("\n")}
};
`,
);
const typed = allNames.map((n) => computedTypes[n] ?? resolve(n));
const counts: Record<string, number> = {};
for (const t of typed) counts[t.type] = (counts[t.type] ?? 0) + 1;
console.log(
  `lib/config/defaults.ts: ${entries.length} parameters; lib/config/parameters.ts: ` +
    `${allNames.length} (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}); ` +
    `readers known for ${allNames.filter((n) => readers.has(n)).length}`,
);

// --- bounce templates ---------------------------------------------------------
// The built-in bounce(5) templates, as the reference's `postconf -t ""` prints
// them, kept as tests/golden/postconf/bounce-templates.ref.

const templatesRef = `${golden}bounce-templates.ref`;
try {
  Deno.statSync(referencePostconf);
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/main.cf`, "");
  Deno.writeTextFileSync(`${dir}/master.cf`, "");
  const out = new Deno.Command(referencePostconf, { args: ["-c", dir, "-t", ""], stderr: "null" })
    .outputSync();
  Deno.removeSync(dir, { recursive: true });
  if (out.success && out.stdout.length > 0) Deno.writeFileSync(templatesRef, out.stdout);
} catch {
  // no reference: keep the stored answer
}
await Deno.writeTextFile(
  `${root}lib/config/bounce_defaults.ts`,
  `// Generated by scripts/gen_defaults.ts from the reference's postconf -t: do not edit.
// The built-in bounce(5) templates in template-file syntax.

/** The four built-in templates as one bounce template file. */
export const builtinTemplateText: string = ${JSON.stringify(Deno.readTextFileSync(templatesRef))};
`,
);

// Format as the rest of the tree so a regeneration shows only real changes.
await new Deno.Command(Deno.execPath(), {
  args: [
    "fmt",
    "-q",
    `${root}lib/config/defaults.ts`,
    `${root}lib/config/parameters.ts`,
    `${root}lib/config/bounce_defaults.ts`,
  ],
}).output();
