// The DNS message codec: round trips of every record type, name compression
// on output, and malformed input (pointer loops, truncation, bad lengths).

import { assert, assertEquals, assertThrows } from "../../assert.ts";
import {
  CLASS_IN,
  decodeMessage,
  defaultFlags,
  DnsFormatError,
  encodeMessage,
  formatIPv6,
  type Message,
  parseIPv6,
  TYPE,
} from "../../../lib/dns/message.ts";
import { reverseName } from "../../../lib/dns/mod.ts";

function message(over: Partial<Message> = {}): Message {
  return {
    id: 0x1234,
    flags: defaultFlags({ qr: true, aa: true, rd: true, ra: true, ad: true }),
    questions: [{ name: "example.com", type: TYPE.MX, class: CLASS_IN }],
    answers: [],
    authority: [],
    additional: [],
    ...over,
  };
}

Deno.test("DNS codec round-trips every record type it knows", () => {
  const rr = (type: number, value: string, extra: object = {}) => ({
    name: "example.com",
    type,
    class: CLASS_IN,
    ttl: 3600,
    value,
    ...extra,
  });
  const msg = message({
    answers: [
      rr(TYPE.A, "192.0.2.1"),
      rr(TYPE.AAAA, "2001:db8::1"),
      rr(TYPE.MX, "mx.example.com", { preference: 10 }),
      rr(TYPE.NS, "ns1.example.com"),
      rr(TYPE.CNAME, "other.example.net"),
      rr(TYPE.PTR, "host.example.com"),
      rr(TYPE.TXT, "v=spf1 -all", { strings: ["v=spf1", " -all"] }),
      rr(TYPE.TLSA, "3 1 1 0123456789abcdef"),
      rr(TYPE.SOA, "ns1.example.com hostmaster.example.com 2024010101 7200 3600 1209600 300"),
      rr(99, "cafe"),
    ],
    authority: [rr(TYPE.NS, "ns2.example.com")],
    additional: [rr(TYPE.A, "192.0.2.53")],
    edns: { udpSize: 1232, do: true },
  });
  const back = decodeMessage(encodeMessage(msg));
  assertEquals(back.id, 0x1234);
  assertEquals(back.flags, msg.flags);
  assertEquals(back.questions, msg.questions);
  assertEquals(back.edns, { udpSize: 1232, do: true });
  assertEquals(
    back.answers.map((a) => [a.type, a.value]),
    msg.answers.map((a) => [a.type, a.value]),
  );
  assertEquals(back.answers[2].preference, 10);
  assertEquals(back.answers[6].strings, ["v=spf1", " -all"]);
  assertEquals(back.authority[0].value, "ns2.example.com");
  assertEquals(back.additional[0].value, "192.0.2.53");
});

Deno.test("DNS codec compresses repeated names and follows the pointers back", () => {
  const answers = Array.from({ length: 5 }, (_, i) => ({
    name: "example.com",
    type: TYPE.MX,
    class: CLASS_IN,
    ttl: 60,
    value: `mx${i}.example.com`,
    preference: i,
  }));
  const wire = encodeMessage(message({ answers }));
  // Uncompressed, each answer would repeat "example.com" (13 bytes) twice.
  assert(wire.length < 12 + 17 + 5 * (13 + 10 + 2 + 4 + 13), `length ${wire.length}`);
  const back = decodeMessage(wire);
  assertEquals(back.answers.map((a) => a.value), answers.map((a) => a.value));
  assert(back.answers.every((a) => a.name === "example.com"));
});

Deno.test("DNS codec rejects pointer loops, forward pointers and truncated data", () => {
  const wire = encodeMessage(message());
  // A question name that points at itself.
  const loop = wire.slice();
  loop[12] = 0xc0;
  loop[13] = 12;
  assertThrows(() => decodeMessage(loop), DnsFormatError);
  assertThrows(() => decodeMessage(wire.slice(0, wire.length - 3)), DnsFormatError);
  assertThrows(() => decodeMessage(new Uint8Array([1, 2, 3])), DnsFormatError);
  // An A record whose data is 3 bytes long.
  const bad = encodeMessage(message({
    answers: [{ name: "a.example", type: 1, class: 1, ttl: 1, value: "1.2.3.4" }],
  }));
  const cut = bad.slice();
  cut[cut.length - 5] = 3;
  assertThrows(() => decodeMessage(cut), DnsFormatError);
  // Names that cannot be encoded.
  assertThrows(
    () => encodeMessage(message({ questions: [{ name: "a..b", type: 1, class: 1 }] })),
    DnsFormatError,
  );
  assertThrows(
    () => encodeMessage(message({ questions: [{ name: "x".repeat(64), type: 1, class: 1 }] })),
    DnsFormatError,
  );
});

Deno.test("DNS codec keeps odd bytes in labels escaped", () => {
  const wire = encodeMessage(message({ questions: [{ name: "a.b", type: 1, class: 1 }] }));
  const odd = wire.slice();
  odd[13] = 0x2e; // the label "a" becomes "."
  assertEquals(decodeMessage(odd).questions[0].name, "\\..b");
});

Deno.test("IPv6 text converts both ways and reverse names are built per family", () => {
  assertEquals(formatIPv6(parseIPv6("2001:DB8:0:0:0:0:0:1")), "2001:db8::1");
  assertEquals(formatIPv6(parseIPv6("::ffff:192.0.2.1")), "::ffff:c000:201");
  assertEquals(formatIPv6(parseIPv6("::")), "::");
  assertEquals(formatIPv6(parseIPv6("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
  assertThrows(() => parseIPv6("1::2::3"), DnsFormatError);
  assertThrows(() => parseIPv6("1:2:3"), DnsFormatError);
  assertEquals(reverseName("192.0.2.1"), "1.2.0.192.in-addr.arpa");
  assertEquals(
    reverseName("2001:db8::567:89ab"),
    "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
  );
  assertThrows(() => reverseName("not-an-address"), DnsFormatError);
});
