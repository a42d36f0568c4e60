// lib/config/bounce_templates: bounce(5) template files, the built-in
// templates, header completion and the time parameters.

import { assert, assertEquals } from "../../assert.ts";
import {
  builtinTemplates,
  effectiveTemplates,
  formatTemplate,
  parseTemplates,
  templateNames,
  type TemplateProblem,
  timeTemplateValue,
} from "../../../lib/config/bounce_templates.ts";

Deno.test("bounce templates: the four built-in templates with their headers", () => {
  const builtin = builtinTemplates();
  assertEquals([...builtin.keys()], [...templateNames]);
  const failure = builtin.get("failure_template")!;
  assertEquals(failure.headers.map(([l]) => l), [
    "Charset",
    "From",
    "Subject",
    "Postmaster-Subject",
  ]);
  assertEquals(failure.body[0], "This is the mail system at host $myhostname.");
  assertEquals(builtin.get("verify_template")!.headers.length, 3);
});

Deno.test("bounce templates: a file's template replaces the text, headers complete from the built-in", () => {
  const problems: TemplateProblem[] = [];
  const custom = parseTemplates(
    "# comment\n\ndelay_template = <<EOF\nsubject: Late\nFROM: x@y\n\nWait $$1.\nEOF\n",
    "t.cf",
    problems,
  );
  assertEquals(problems, []);
  const [, delay] = effectiveTemplates(custom);
  assertEquals(
    formatTemplate(delay),
    "delay_template = <<EOF\nCharset: us-ascii\nFrom: x@y\nSubject: Late\n" +
      "Postmaster-Subject: Postmaster Warning: Delayed Mail\n\nWait $$1.\nEOF",
  );
});

Deno.test("bounce templates: text without headers is all body", () => {
  const custom = parseTemplates("success_template = <<EOF\nbody only\nEOF\n", "t.cf");
  assertEquals(custom.get("success_template")!.body, ["body only"]);
  assertEquals(custom.get("success_template")!.headers, []);
});

Deno.test("bounce templates: bad templates are reported with the reference's wording", () => {
  const problems: TemplateProblem[] = [];
  parseTemplates("bogus_template = <<EOF\nx\nEOF\n", "a.cf", problems);
  parseTemplates("delay_template = <<EOF\nx: y\n\nbody\nEOF\n", "b.cf", problems);
  parseTemplates("delay_template = <<EOF\nbody\n", "c.cf", problems);
  parseTemplates("garbage\n", "d.cf", problems);
  assertEquals(problems, [
    {
      text: "a.cf, line 4: unknown template name: bogus_template -- ignoring this template",
      fatal: false,
    },
    {
      text: 'b.cf: unknown "x" header label in delay template -- ignoring this template',
      fatal: false,
    },
    { text: 'c.cf, line 3: missing "EOF" end marker', fatal: false },
    { text: `d.cf, line 2: missing '=' after attribute name: "garbage"`, fatal: true },
  ]);
});

Deno.test("bounce templates: delay_warning_time_UNIT and maximal_queue_lifetime_UNIT", () => {
  const seconds = (p: string) => (p === "delay_warning_time" ? 4 * 3600 : 5 * 86400);
  assertEquals(timeTemplateValue("delay_warning_time_minutes", seconds)?.value, 240);
  assertEquals(timeTemplateValue("maximal_queue_lifetime_weeks", seconds)?.value, 0);
  assertEquals(timeTemplateValue("maximal_queue_lifetime_days", seconds)?.value, 5);
  assert(timeTemplateValue("myhostname", seconds) === undefined);
});
