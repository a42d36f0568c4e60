// The smtp client's SASL authentication: a password from
// smtp_sasl_password_maps, PLAIN and LOGIN, the security options, and the
// failure Postfix logs when the server refuses.

import { assertEquals, assertStringIncludes } from "../../assert.ts";
import { type Answer, deliver, fakeServer, opts } from "./helpers.ts";

const b64 = (s: string) => btoa(s);

/** An AUTH-capable server that accepts user/secret. */
function authReplies(): Record<string, Answer> {
  let step = "";
  return {
    AUTH: (line) => {
      const [, mech, initial] = line.split(" ");
      if (mech === "PLAIN") {
        return initial === b64("\0user\0secret")
          ? "235 2.7.0 Authentication successful"
          : "535 5.7.8 Error: authentication failed: bad credentials";
      }
      if (mech === "LOGIN") {
        step = "user";
        return "334 VXNlcm5hbWU6";
      }
      return "504 5.5.4 unsupported";
    },
    "*": (line) => {
      if (step === "user") {
        step = line === b64("user") ? "pass" : "bad";
        return "334 UGFzc3dvcmQ6";
      }
      if (step === "pass" || step === "bad") {
        const ok = step === "pass" && line === b64("secret");
        step = "";
        return ok
          ? "235 2.7.0 Authentication successful"
          : "535 5.7.8 Error: authentication failed";
      }
      return undefined;
    },
  };
}

Deno.test(
  "smtp authenticates with PLAIN from smtp_sasl_password_maps keyed by next hop",
  opts,
  async () => {
    const srv = await fakeServer({
      extensions: ["PIPELINING", "AUTH PLAIN LOGIN"],
      replies: authReplies(),
    });
    try {
      const key = `[127.0.0.1]:${srv.port}`;
      const r = await deliver(
        { nexthop: key },
        [
          "smtp_sasl_auth_enable = yes",
          `smtp_sasl_password_maps = inline:{{${key} = user:secret}}`,
          "smtp_sasl_security_options = noanonymous",
        ].join("\n"),
      );
      assertEquals([...r.reply.results.values()], ["sent"]);
      assertEquals(srv.sessions[0].lines[1], `AUTH PLAIN ${b64("\0user\0secret")}`);
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp authenticates with LOGIN when the filter allows only LOGIN", opts, async () => {
  const srv = await fakeServer({
    extensions: ["AUTH PLAIN LOGIN"],
    replies: authReplies(),
  });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      [
        "smtp_sasl_auth_enable = yes",
        "smtp_sasl_password_maps = inline:{127.0.0.1=user:secret}",
        "smtp_sasl_security_options =",
        "smtp_sasl_mechanism_filter = login",
      ].join("\n"),
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].lines.slice(1, 4), ["AUTH LOGIN", b64("user"), b64("secret")]);
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp defers when the server refuses the password, with Postfix's text",
  opts,
  async () => {
    const srv = await fakeServer({ extensions: ["AUTH PLAIN"], replies: authReplies() });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        [
          "smtp_sasl_auth_enable = yes",
          "smtp_sasl_password_maps = inline:{127.0.0.1=user:wrong}",
          "smtp_sasl_security_options =",
        ].join("\n"),
      );
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(
        r.log,
        "dsn=4.7.8, status=deferred (SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: bad credentials)",
      );
      assertEquals(srv.sessions[0].lines.some((l) => l.startsWith("MAIL")), false);
    } finally {
      await srv.close();
    }
  },
);

Deno.test(
  "smtp with the default noplaintext option finds no mechanism for a plaintext server",
  opts,
  async () => {
    const srv = await fakeServer({ extensions: ["AUTH PLAIN LOGIN"], replies: authReplies() });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = inline:{127.0.0.1=user:secret}",
      );
      assertStringIncludes(
        r.log,
        "status=deferred (SASL authentication failed: server 127.0.0.1[127.0.0.1] offered no compatible authentication mechanisms for this type of connection security)",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp without a password for the server sends no AUTH", opts, async () => {
  const srv = await fakeServer({ extensions: ["AUTH PLAIN"], replies: authReplies() });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = inline:{other.example=user:secret}",
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].lines.some((l) => l.startsWith("AUTH")), false);
  } finally {
    await srv.close();
  }
});

Deno.test(
  "smtp: a CRAM-MD5 challenge that is not base64 defers the mail, no crash",
  opts,
  async () => {
    const srv = await fakeServer({
      extensions: ["AUTH CRAM-MD5"],
      replies: { AUTH: "334 !!! not base64 !!!" },
    });
    try {
      const r = await deliver(
        { nexthop: `[127.0.0.1]:${srv.port}` },
        "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = inline:{127.0.0.1=user:secret}",
      );
      assertEquals([...r.reply.results.values()], ["deferred"]);
      assertStringIncludes(
        r.log,
        "status=deferred (lost connection with 127.0.0.1[127.0.0.1] while performing the AUTH handshake)",
      );
    } finally {
      await srv.close();
    }
  },
);

Deno.test("smtp authenticates with CRAM-MD5 under the default security options", opts, async () => {
  const challenge = "<1896.697170952@postoffice.example>";
  const srv = await fakeServer({
    extensions: ["AUTH CRAM-MD5 PLAIN"],
    replies: {
      AUTH: `334 ${btoa(challenge)}`,
      "*": (line) => {
        if (!/^[A-Za-z0-9+/]+=*$/.test(line)) return undefined;
        const [user, digest] = atob(line).split(" ");
        return user === "user" && /^[0-9a-f]{32}$/.test(digest) ? "235 2.7.0 Ok" : undefined;
      },
    },
  });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}` },
      "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = inline:{127.0.0.1=user:secret}",
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].lines[1], "AUTH CRAM-MD5");
  } finally {
    await srv.close();
  }
});

Deno.test("smtp_sender_dependent_authentication looks the sender up first", opts, async () => {
  const srv = await fakeServer({ extensions: ["AUTH PLAIN"], replies: authReplies() });
  try {
    const r = await deliver(
      { nexthop: `[127.0.0.1]:${srv.port}`, sender: "boss@example.org" },
      [
        "smtp_sasl_auth_enable = yes",
        "smtp_sender_dependent_authentication = yes",
        "smtp_sasl_password_maps = inline:{boss@example.org=user:secret, 127.0.0.1=other:wrong}",
        "smtp_sasl_security_options =",
      ].join("\n"),
    );
    assertEquals([...r.reply.results.values()], ["sent"]);
    assertEquals(srv.sessions[0].lines[1], `AUTH PLAIN ${b64("\0user\0secret")}`);
  } finally {
    await srv.close();
  }
});
