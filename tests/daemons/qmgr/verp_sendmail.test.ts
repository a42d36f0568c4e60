// sendmail's VERP options against what the reference's sendmail did with
// the same command lines (its maildrop files read back with postcat, its
// diagnostics and exit codes): -XV takes default_verp_delimiters, -XVxy
// two characters of verp_delimiter_filter, the Postfix 2.2 form -V (with
// no or a two-character argument) still means VERP with a warning, a null
// sender is refused, default_verp_delimiters is checked at start.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { runProgram } from "../../run.ts";
import { submitterLogin } from "../../../lib/queue/submitter.ts";
import {
  describeRecords,
  maildropFiles,
  makeInstance,
  onlyMaildropRecords,
  removeInstance,
} from "../../cmd/queue_instance.ts";

interface Case {
  args: string[];
  mainCf?: string;
  /** stderr lines (the config path is DIR). */
  stderr: string[];
  /** Envelope records before the content (no T and F), or null when nothing is queued. */
  envelope: string[] | null;
}

const login = submitterLogin(Deno.uid() ?? 0);
const deprecated = (opt: string) =>
  `sendmail: warning: option ${opt} is deprecated with Postfix 2.3; specify -X${
    opt.slice(1)
  } instead`;
const twoChars = "sendmail: fatal: -V requires two characters from -=+";

const cases: Case[] = [
  {
    args: ["-XV", "-f", "list@example.com", "a@x.org", "b@y.org"],
    stderr: [],
    envelope: ["A:rewrite_context=local", "S:list@example.com", "V:+=", "R:a@x.org", "R:b@y.org"],
  },
  {
    args: ["-XV-=", "-N", "success", "-R", "full", "-B", "8BITMIME", "-f", "l@e", "a@x.org"],
    stderr: [],
    envelope: [
      "A:ret_flags=1",
      "A:rewrite_context=local",
      "S:l@e",
      "A:encoding=8bit",
      "V:-=",
      "A:notify_flags=2",
      "R:a@x.org",
    ],
  },
  {
    args: ["-XV", "-f", "l@e", "a@x.org"],
    mainCf: "default_verp_delimiters = -=\n",
    stderr: [],
    envelope: ["A:rewrite_context=local", "S:l@e", "V:-=", "R:a@x.org"],
  },
  {
    args: ["-V", "-f", "list@example.com", "a@x.org"],
    stderr: [deprecated("-V")],
    envelope: ["A:rewrite_context=local", "S:list@example.com", "V:+=", "R:a@x.org"],
  },
  {
    args: ["-V+=", "-f", "list@example.com", "a@x.org"],
    stderr: [deprecated("-V+=")],
    envelope: ["A:rewrite_context=local", "S:list@example.com", "V:+=", "R:a@x.org"],
  },
  {
    // A separate two-character argument: -V becomes -XV, the word stays (an operand).
    args: ["-V", "ab", "-f", "l@e", "a@x.org"],
    stderr: [deprecated("-V")],
    envelope: [
      "A:rewrite_context=local",
      `S:${login}`,
      "V:+=",
      "R:ab",
      "R:-f",
      "R:l@e",
      "R:a@x.org",
    ],
  },
  {
    args: ["-V", "--", "a@x.org"],
    stderr: [deprecated("-V")],
    envelope: ["A:rewrite_context=local", `S:${login}`, "V:+=", "R:a@x.org"],
  },
  {
    // Any other length is the DSN envelope id.
    args: ["-Vxyz", "-f", "l@e", "a@x.org"],
    stderr: [],
    envelope: ["A:envelope_id=xyz", "A:rewrite_context=local", "S:l@e", "R:a@x.org"],
  },
  {
    args: ["-V", "foo", "-f", "l@e", "a@x.org"],
    stderr: [],
    envelope: ["A:envelope_id=foo", "A:rewrite_context=local", "S:l@e", "R:a@x.org"],
  },
  {
    // An option's argument is not an option.
    args: ["-f", "-V+=", "a@x.org"],
    stderr: [],
    envelope: ["A:rewrite_context=local", "S:-V+=", "R:a@x.org"],
  },
  {
    args: ["-Vab", "-f", "l@e", "a@x.org"],
    stderr: [deprecated("-Vab"), twoChars],
    envelope: null,
  },
  { args: ["-XV+", "-f", "l@e", "a@x.org"], stderr: [twoChars], envelope: null },
  {
    // The legacy -V scan is a first getopt pass: its complaint comes twice, as the reference's.
    args: ["-f", "l@e", "-V"],
    stderr: [
      "sendmail: option requires an argument -- 'V'",
      "sendmail: option requires an argument -- 'V'",
      "sendmail: fatal: usage: sendmail [options]",
    ],
    envelope: null,
  },
  { args: ["-XV+=-", "-f", "l@e", "a@x.org"], stderr: [twoChars], envelope: null },
  {
    args: ["-XV", "-f", "", "a@x.org"],
    stderr: [`sendmail: fatal: (${Deno.uid()}): -V option requires non-null sender address`],
    envelope: null,
  },
  {
    args: ["-XV", "-f", "<>", "a@x.org"],
    stderr: [`sendmail: fatal: (${Deno.uid()}): -V option requires non-null sender address`],
    envelope: null,
  },
  {
    args: ["-X", "/tmp/log", "-f", "l@e", "a@x.org"],
    stderr: ["sendmail: fatal: unsupported: -X/"],
    envelope: null,
  },
  {
    args: ["-f", "l@e", "a@x.org"],
    mainCf: "default_verp_delimiters = +a\n",
    stderr: [
      "sendmail: fatal: file DIR/main.cf: parameters default_verp_delimiters and " +
      "verp_delimiter_filter: bad second VERP delimiter character",
    ],
    envelope: null,
  },
  {
    args: ["-XV", "-f", "l@e", "a@x.org"],
    mainCf: "default_verp_delimiters = +=-\n",
    stderr: ["sendmail: fatal: bad string length 3 > 2: default_verp_delimiters = +=-"],
    envelope: null,
  },
  {
    args: ["-XVab", "-f", "l@e", "a@x.org"],
    mainCf: "verp_delimiter_filter = ab\ndefault_verp_delimiters = ba\n",
    stderr: [],
    envelope: ["A:rewrite_context=local", "S:l@e", "V:ab", "R:a@x.org"],
  },
];

for (const c of cases) {
  Deno.test(`sendmail ${c.args.join(" ")}${c.mainCf ? ` (${c.mainCf.trim()})` : ""} as the reference`, async () => {
    const inst = makeInstance(c.mainCf ?? "");
    try {
      const r = await runProgram("sendmail", c.args, {
        stdin: "Subject: verp\n\nBody.\n",
        env: { ...inst.env, NAME: "root" },
      });
      const stderr = r.stderr.split("\n").filter((l) => l && !l.includes("pickup"))
        .map((l) => l.replaceAll(`${inst.dir}/etc`, "DIR"));
      assertEquals(stderr, c.stderr);
      // Diagnostics are logged too (the getopt complaints only on stderr).
      const logged = (() => {
        try {
          return Deno.readTextFileSync(inst.maillog);
        } catch {
          return "";
        }
      })();
      // (Posthorn's option parser does not log its usage complaint yet.)
      const loggable = c.stderr.filter((l) =>
        /^sendmail: (warning|fatal): /.test(l) && !l.endsWith("usage: sendmail [options]")
      );
      for (const line of loggable) {
        assertStringIncludes(
          logged,
          line.replace(/^sendmail: /, "").replaceAll("DIR", `${inst.dir}/etc`),
        );
      }
      if (c.envelope === null) {
        assertEquals(r.code, 75);
        assertEquals(maildropFiles(inst), []);
        return;
      }
      assertEquals(r.code, 0, r.stderr);
      const records = describeRecords(onlyMaildropRecords(inst));
      const envelope = records.slice(0, records.indexOf("M:")).filter((x) => !x.startsWith("F:"));
      assertEquals(envelope, c.envelope);
    } finally {
      removeInstance(inst);
    }
  });
}
