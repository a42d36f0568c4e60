// Bounce templates (bounce(5)): the built-in failure, delay, success and
// verify templates (the text `postconf -b` prints), bounce_template_file
// overrides, and the expansion of $myhostname, $mydomain,
// $delay_warning_time_UNIT, $maximal_queue_lifetime_UNIT and other main.cf
// parameters in the text.

import type { ReportTemplate } from "../../lib/dsn/report.ts";

/** The template names of a template file. */
export type TemplateName = "failure" | "delay" | "success" | "verify";

/** A template before expansion. */
interface RawTemplate {
  charset: string;
  from: string;
  subject: string;
  postmasterSubject: string;
  text: string;
}

const from = "Mail Delivery System <MAILER-DAEMON>";
const closing = "\n                   The mail system\n";
const help = "For further assistance, please send mail to postmaster.\n\n" +
  "If you do so, please include this problem report. You can\n" +
  "delete your own text from the attached returned message.\n";

/** The built-in templates (Postfix 3.7's texts; its built-in charset is utf-8, unlike bounce.cf.default's). */
export const defaultTemplates: Record<TemplateName, RawTemplate> = {
  failure: {
    charset: "utf-8",
    from,
    subject: "Undelivered Mail Returned to Sender",
    postmasterSubject: "Postmaster Copy: Undelivered Mail",
    text: "This is the mail system at host $myhostname.\n\n" +
      "I'm sorry to have to inform you that your message could not\n" +
      "be delivered to one or more recipients. It's attached below.\n\n" + help + closing,
  },
  delay: {
    charset: "utf-8",
    from,
    subject: "Delayed Mail (still being retried)",
    postmasterSubject: "Postmaster Warning: Delayed Mail",
    text: "This is the mail system at host $myhostname.\n\n" +
      "####################################################################\n" +
      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n" +
      "####################################################################\n\n" +
      "Your message could not be delivered for more than $delay_warning_time_hours hour(s).\n" +
      "It will be retried until it is $maximal_queue_lifetime_days day(s) old.\n\n" + help +
      closing,
  },
  success: {
    charset: "utf-8",
    from,
    subject: "Successful Mail Delivery Report",
    postmasterSubject: "Successful Mail Delivery Report",
    text: "This is the mail system at host $myhostname.\n\n" +
      "Your message was successfully delivered to the destination(s)\n" +
      "listed below. If the message was delivered to mailbox you will\n" +
      "receive no further notifications. Otherwise you may still receive\n" +
      "notifications of mail delivery errors from other systems.\n" + closing,
  },
  verify: {
    charset: "utf-8",
    from,
    subject: "Mail Delivery Status Report",
    postmasterSubject: "Mail Delivery Status Report",
    text: "This is the mail system at host $myhostname.\n\n" +
      "Enclosed is the mail delivery report that you requested.\n" + closing,
  },
};

/** A template file that cannot be used. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** Parses a bounce_template_file; templates it does not name keep the built-in ones. */
export function parseTemplateFile(
  source: string,
  file: string,
): Record<TemplateName, RawTemplate> {
  const out = { ...defaultTemplates };
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    const m = /^\s*(\w+)_template\s*=\s*<<\s*(\S+)\s*$/.exec(line);
    if (!m) throw new TemplateError(`${file}: line ${i + 1}: expected "name_template = <<EOF"`);
    const name = m[1] as TemplateName;
    if (!(name in defaultTemplates)) {
      throw new TemplateError(`${file}: line ${i + 1}: unknown template name: ${m[1]}_template`);
    }
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) body.push(lines[i]);
    if (i >= lines.length) throw new TemplateError(`${file}: missing "${m[2]}" end marker`);
    out[name] = parseTemplate(body, defaultTemplates[name]);
  }
  return out;
}

/** Template headers, then the text. */
function parseTemplate(body: string[], base: RawTemplate): RawTemplate {
  const t = { ...base };
  let at = 0;
  for (; at < body.length; at++) {
    const h = /^([A-Za-z-]+):\s*(.*)$/.exec(body[at]);
    if (!h) break;
    const name = h[1].toLowerCase();
    if (name === "charset") t.charset = h[2];
    else if (name === "from") t.from = h[2];
    else if (name === "subject") t.subject = h[2];
    else if (name === "postmaster-subject") t.postmasterSubject = h[2];
    else break;
  }
  while (at < body.length && body[at].trim() === "") at++;
  t.text = body.slice(at).join("\n") + "\n";
  return t;
}

const units: Record<string, number> = {
  seconds: 1,
  minutes: 60,
  hours: 3600,
  days: 86400,
  weeks: 604800,
};

/** What expansion needs from the configuration. */
export interface TemplateConfig {
  get(name: string): string;
  time(name: string): number;
}

/** Expands $name in the text ($$ is a dollar sign). */
export function expandTemplate(t: RawTemplate, config: TemplateConfig): ReportTemplate {
  const text = t.text.replace(/\$(\$|\{(\w+)\}|(\w+))/g, (_all, dollar, braced, plain) => {
    if (dollar === "$") return "$";
    const name: string = braced ?? plain;
    const m = /^(delay_warning_time|maximal_queue_lifetime)_(seconds|minutes|hours|days|weeks)$/
      .exec(name);
    if (m) return String(Math.floor(config.time(m[1]) / units[m[2]]));
    return config.get(name);
  });
  return { ...t, text };
}
