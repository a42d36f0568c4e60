// SASL AUTH through a stand-in Dovecot auth server speaking the Dovecot
// auth protocol: mechanisms in EHLO, PLAIN with an initial response, LOGIN
// with challenges, failures, permit_sasl_authenticated relaying, and the
// sasl_* attributes in the queue file.

import { assert, assertEquals, assertStringIncludes } from "../../assert.ts";
import { decodeRecords } from "../../../lib/queue/record.ts";
import { readQueueFile } from "../../../lib/queue/file.ts";
import { Client, logHas, start, stop } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b64 = (s: string) => btoa(s);

/** Accepts user "alice" with password "secret" for PLAIN and LOGIN. */
function dovecot(path: string): { close(): void } {
  const listener = Deno.listen({ transport: "unix", path });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        await conn.write(
          enc.encode(
            "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n" +
              "MECH\tANONYMOUS\tanonymous\nSPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n",
          ),
        );
        let buf = "";
        const login = new Map<string, string>();
        const chunk = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(chunk).catch(() => null);
          if (n === null) break;
          buf += dec.decode(chunk.subarray(0, n));
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const f = buf.slice(0, nl).split("\t");
            buf = buf.slice(nl + 1);
            const id = f[1];
            let reply = "";
            if (f[0] === "AUTH" && f[2] === "PLAIN") {
              const resp = f.find((x) => x.startsWith("resp="))?.slice(5) ?? "";
              const [, user, pass] = atob(resp).split("\0");
              reply = user === "alice" && pass === "secret"
                ? `OK\t${id}\tuser=alice`
                : `FAIL\t${id}\tuser=${user}`;
            } else if (f[0] === "AUTH" && f[2] === "LOGIN") {
              reply = `CONT\t${id}\t${b64("Username:")}`;
            } else if (f[0] === "CONT" && !login.has(id)) {
              login.set(id, atob(f[2]));
              reply = `CONT\t${id}\t${b64("Password:")}`;
            } else if (f[0] === "CONT") {
              reply = login.get(id) === "alice" && atob(f[2]) === "secret"
                ? `OK\t${id}\tuser=alice`
                : `FAIL\t${id}\treason=bad password`;
            }
            if (reply) await conn.write(enc.encode(reply + "\n"));
          }
        }
      })();
    }
  })();
  return {
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Closed.
        }
      }
    },
  };
}

Deno.test({
  name: "AUTH through Dovecot: PLAIN and LOGIN, failures, and relaying for authenticated clients",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inst = await start(
      "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = DIR/auth\n",
    );
    const server = dovecot(`${inst.dir}/auth`);
    try {
      const c = await Client.connect(inst.port);
      await c.reply();
      const ehlo = await c.cmd("EHLO client.example");
      assertStringIncludes(ehlo, "250-AUTH PLAIN LOGIN\n");
      assertEquals(
        await c.cmd(`AUTH PLAIN ${b64("\0alice\0wrong")}`),
        "535 5.7.8 Error: authentication failed: authentication failure",
      );
      assertEquals(
        await c.cmd("AUTH CRAM-MD5"),
        "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
      );
      assertEquals(await c.cmd("AUTH LOGIN"), `334 ${b64("Username:")}`);
      assertEquals(await c.cmd("*"), "501 5.7.0 Authentication aborted");
      assertEquals(await c.cmd("AUTH LOGIN"), `334 ${b64("Username:")}`);
      assertEquals(await c.cmd(b64("alice")), `334 ${b64("Password:")}`);
      assertEquals(await c.cmd(b64("secret")), "235 2.7.0 Authentication successful");
      assertEquals(
        await c.cmd(`AUTH PLAIN ${b64("\0alice\0secret")}`),
        "503 5.5.1 Error: already authenticated",
      );
      assertEquals(await c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok");
      // permit_sasl_authenticated in the default smtpd_relay_restrictions.
      assertEquals(await c.cmd("RCPT TO:<x@elsewhere.example>"), "250 2.1.5 Ok");
      assertEquals(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
      const done = await c.cmd("Subject: auth\r\n\r\nhi\r\n.");
      const id = /queued as (\w+)/.exec(done)?.[1];
      assert(id, done);
      c.close();
      const attrs = decodeRecords(readQueueFile(`${inst.layout.queueDirectory}/incoming/${id}`))
        .filter((r) => r.type === "A").map((r) => dec.decode(r.data));
      assert(
        attrs.includes("sasl_method=LOGIN") && attrs.includes("sasl_username=alice"),
        attrs.join(","),
      );
      const log = await logHas(inst, "sasl_username=alice");
      assertStringIncludes(
        log,
        `${id}: client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=alice`,
      );
      assertStringIncludes(log, "warning: localhost[127.0.0.1]: SASL PLAIN authentication failed");
    } finally {
      server.close();
      await stop(inst);
    }
  },
});
