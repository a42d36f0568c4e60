import { assertEquals } from "../assert.ts";
import { openMap } from "../../maps/mod.ts";
import { formatIP, parseIPv6 } from "../../maps/ip.ts";
import { tempDir, withLog } from "./helpers.ts";

async function table(text: string) {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/t`, text);
  const { result, log } = await withLog(() => openMap(`cidr:${dir}/t`));
  cleanup();
  return { dict: result, log: log.map((l) => l.replace(`${dir}/t`, "FILE")) };
}

Deno.test("cidr table matches IPv4 networks at their boundaries", async () => {
  const { dict } = await table("192.168.1.0/24 net24\n10.0.0.1 host\n0.0.0.0/0 all\n");
  assertEquals(await dict.lookup("192.168.1.0"), "net24");
  assertEquals(await dict.lookup("192.168.1.255"), "net24");
  assertEquals(await dict.lookup("192.168.2.0"), "all");
  assertEquals(await dict.lookup("192.168.0.255"), "all");
  assertEquals(await dict.lookup("10.0.0.1"), "host");
  assertEquals(await dict.lookup("10.0.0.2"), "all");
  assertEquals(await dict.lookup("2001:db8::1"), undefined);
  assertEquals(await dict.lookup("not-an-address"), undefined);
});

Deno.test("cidr table matches IPv6 networks, bare or in brackets", async () => {
  const { dict } = await table("2001:db8::/32 v6net\n[::1] v6host\n[fe80::]/10 link\n::/0 any6\n");
  assertEquals(await dict.lookup("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), "v6net");
  assertEquals(await dict.lookup("2001:db9::"), "any6");
  assertEquals(await dict.lookup("::1"), "v6host");
  assertEquals(await dict.lookup("febf::1"), "link");
  assertEquals(await dict.lookup("fec0::1"), "any6");
  assertEquals(await dict.lookup("1.2.3.4"), undefined);
});

Deno.test("cidr odd prefix lengths split octets correctly", async () => {
  const { dict } = await table("10.0.0.0/9 nine\n2001:db8:8000::/33 v6-33\n");
  assertEquals(await dict.lookup("10.127.255.255"), "nine");
  assertEquals(await dict.lookup("10.128.0.0"), undefined);
  assertEquals(await dict.lookup("2001:db8:ffff::1"), "v6-33");
  assertEquals(await dict.lookup("2001:db8:7fff::1"), undefined);
});

Deno.test("cidr negation and if/endif blocks", async () => {
  const { dict } = await table(
    "if 10.0.0.0/8\n10.1.0.0/16 inside\n!10.1.0.0/16 elsewhere-in-10\nendif\n!172.16.0.0/12 notpriv\n",
  );
  assertEquals(await dict.lookup("10.1.2.3"), "inside");
  assertEquals(await dict.lookup("10.2.0.1"), "elsewhere-in-10");
  assertEquals(await dict.lookup("172.16.0.1"), undefined);
  assertEquals(await dict.lookup("8.8.8.8"), "notpriv");
  assertEquals(await dict.lookup("::1"), undefined);
});

Deno.test("cidr bad lines are skipped with Postfix's warnings", async () => {
  const { dict, log } = await table(
    "1.2.3.4/24 badbits\n300.1.1.1 bad\n1.2.3.0/33 badlen\nnonsense x\n2001:db8::1/32 v6bits\nendif\nif 1.0.0.0/8\n9.9.9.9 ok\n",
  );
  assertEquals(log, [
    'warning: cidr map FILE, line 1: non-null host address bits in "1.2.3.4/24", perhaps you should use "1.2.3.0/24" instead: skipping this rule',
    'warning: cidr map FILE, line 2: bad address pattern: "300.1.1.1": skipping this rule',
    'warning: cidr map FILE, line 3: bad mask length in "1.2.3.0/33": skipping this rule',
    'warning: cidr map FILE, line 4: bad address pattern: "nonsense": skipping this rule',
    'warning: cidr map FILE, line 5: non-null host address bits in "2001:db8::1/32", perhaps you should use "2001:db8::/32" instead: skipping this rule',
    "warning: cidr map FILE, line 6: ENDIF without IF: skipping this rule",
    "warning: cidr map FILE, line 7: IF has no matching ENDIF",
  ]);
  assertEquals(await dict.lookup("9.9.9.9"), undefined);
});

Deno.test("parseIPv6() and formatIP() handle compression and IPv4 tails", () => {
  assertEquals(formatIP(parseIPv6("2001:0db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
  assertEquals(formatIP(parseIPv6("::ffff:1.2.3.4")!), "::ffff:102:304");
  assertEquals(parseIPv6("1::2::3"), null);
  assertEquals(parseIPv6("1:2:3:4:5:6:7:8:9"), null);
});
