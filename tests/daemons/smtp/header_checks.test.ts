// smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks and
// smtp_body_checks: the restricted header_checks(5) actions change the
// message as sent (what the scripted server received), with smtp(8)'s log
// lines; actions that would change delivery are logged as unsupported.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { deliver, fakeServer, opts } from "./helpers.ts";

/** Writes a regexp table and returns its spec. */
function regexp(dir: string, name: string, lines: string[]): string {
  const path = `${dir}/${name}`;
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  return `regexp:${path}`;
}

async function withTables<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "smtp-checks-" });
  try {
    return await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test(
  "smtp_header_checks REPLACE, PREPEND, IGNORE, STRIP, WARN and INFO change the message sent",
  opts,
  async () => {
    await withTables(async (dir) => {
      const srv = await fakeServer();
      try {
        const table = regexp(dir, "hc", [
          "/^Subject: secret/ REPLACE Subject: [redacted]",
          "/^X-Internal:/ IGNORE",
          "/^X-Strip:/ STRIP internal header",
          "/^X-Warn:/ WARN look at this",
          "/^X-Info:/ INFO noted",
          "/^From:/ PREPEND X-Checked: yes",
          "/^To:/ DUNNO",
        ]);
        const r = await deliver(
          {
            nexthop: `[127.0.0.1]:${srv.port}`,
            body: [
              "Subject: secret plans",
              "From: a@example.org",
              "To: b@example.org",
              "X-Internal: 1",
              "X-Strip: 2",
              "X-Warn: 3",
              "X-Info: 4",
              "",
              "Subject: secret in the body stays",
            ],
          },
          `smtp_header_checks = ${table}`,
        );
        assertStringIncludes(r.log, "status=sent");
        const msg = srv.sessions[0].messages[0].split("\r\n");
        assertEquals(msg, [
          "Subject: [redacted]",
          "X-Checked: yes",
          "From: a@example.org",
          "To: b@example.org",
          "X-Warn: 3",
          "X-Info: 4",
          "",
          "Subject: secret in the body stays",
        ]);
        const id = r.id;
        assertStringIncludes(
          r.log,
          `${id}: replace: header Subject: secret plans: Subject: [redacted]`,
        );
        assertStringIncludes(r.log, `${id}: prepend: header From: a@example.org: X-Checked: yes`);
        assertStringIncludes(r.log, `${id}: strip: header X-Strip: 2: internal header`);
        assertStringIncludes(r.log, `${id}: warning: header X-Warn: 3: look at this`);
        assertStringIncludes(r.log, `${id}: info: header X-Info: 4: noted`);
        assert(!r.log.includes("X-Internal"), r.log);
      } finally {
        await srv.close();
      }
    });
  },
);

Deno.test(
  "smtp_header_checks: actions that change delivery are logged as unsupported and do nothing",
  opts,
  async () => {
    await withTables(async (dir) => {
      const srv = await fakeServer();
      try {
        const table = regexp(dir, "hc", [
          "/^Subject:/ REJECT no thanks",
          "/^X-Hold:/ HOLD",
          "/^X-Bad:/ REPLACE not a header",
        ]);
        const r = await deliver(
          {
            nexthop: `[127.0.0.1]:${srv.port}`,
            body: ["Subject: hi", "X-Hold: 1", "X-Bad: 2", "", "body"],
          },
          `smtp_header_checks = ${table}`,
        );
        assertStringIncludes(r.log, "status=sent");
        assertStringIncludes(
          r.log,
          "warning: unsupported command in smtp_header_checks map: REJECT no thanks",
        );
        assertStringIncludes(r.log, "warning: unsupported command in smtp_header_checks map: HOLD");
        assertStringIncludes(
          r.log,
          'warning: bad REPLACE header text "not a header" in smtp_header_checks map -- need "headername: headervalue"',
        );
        assertEquals(srv.sessions[0].messages[0].split("\r\n").slice(0, 3), [
          "Subject: hi",
          "X-Hold: 1",
          "X-Bad: 2",
        ]);
      } finally {
        await srv.close();
      }
    });
  },
);

Deno.test(
  "smtp_body_checks, smtp_mime_header_checks and smtp_nested_header_checks see their parts",
  opts,
  async () => {
    await withTables(async (dir) => {
      const srv = await fakeServer();
      try {
        const body = regexp(dir, "bc", [
          "/^password:/ REPLACE password: ****",
          "/^drop me$/ IGNORE",
        ]);
        const mime = regexp(dir, "mc", ["/^Content-Description:/ IGNORE"]);
        const nested = regexp(dir, "nc", ["/^Subject:/ REPLACE Subject: inner"]);
        const header = regexp(dir, "hc", ["/^Subject:/ REPLACE Subject: outer"]);
        const r = await deliver(
          {
            nexthop: `[127.0.0.1]:${srv.port}`,
            body: [
              "Subject: original",
              "MIME-Version: 1.0",
              'Content-Type: multipart/mixed; boundary="b1"',
              "",
              "preamble",
              "--b1",
              "Content-Type: text/plain",
              "Content-Description: notes",
              "",
              "password: hunter2",
              "drop me",
              "--b1",
              "Content-Type: message/rfc822",
              "",
              "Subject: attached",
              "",
              "inner body",
              "--b1--",
            ],
          },
          [
            `smtp_header_checks = ${header}`,
            `smtp_mime_header_checks = ${mime}`,
            `smtp_nested_header_checks = ${nested}`,
            `smtp_body_checks = ${body}`,
          ].join("\n"),
        );
        assertStringIncludes(r.log, "status=sent");
        assertEquals(srv.sessions[0].messages[0].split("\r\n"), [
          "Subject: outer",
          "MIME-Version: 1.0",
          'Content-Type: multipart/mixed; boundary="b1"',
          "",
          "preamble",
          "--b1",
          "Content-Type: text/plain",
          "",
          "password: ****",
          "--b1",
          "Content-Type: message/rfc822",
          "",
          "Subject: inner",
          "",
          "inner body",
          "--b1--",
        ]);
        assertStringIncludes(r.log, `${r.id}: replace: body password: hunter2: password: ****`);
      } finally {
        await srv.close();
      }
    });
  },
);
