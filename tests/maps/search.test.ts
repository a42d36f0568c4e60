import { assertEquals } from "../assert.ts";
import {
  type Dict,
  domainKeys,
  openMap,
  searchAccessAddress,
  searchAccessAddressIP,
  searchAccessDomain,
  searchAliases,
  searchCanonical,
  searchRelocated,
  searchTransport,
  searchVirtual,
  splitExtension,
} from "../../maps/mod.ts";
import { tempDir } from "./helpers.ts";

/** An inline table whose lookups are recorded, to check the order of keys tried. */
function recorder(entries: Record<string, string> = {}): { dict: Dict; keys: string[] } {
  const keys: string[] = [];
  const items = Object.entries(entries).map(([k, v]) => `{${k}=${v}}`).join(", ");
  const inner = openMap(`inline:{ ${items || "{__none=x}"} }`);
  const dict = Object.create(inner) as Dict;
  dict.lookup = (key: string) => {
    keys.push(key);
    return inner.lookup(key);
  };
  return { dict, keys };
}

const access = { recipientDelimiter: "+", parentStyle: false };

Deno.test("access(5) address order: user+ext@domain, user@domain, domain, parents, user+ext@, user@", async () => {
  const { dict, keys } = recorder();
  await searchAccessAddress(dict, "user+foo@mail.example.com", access);
  assertEquals(keys, [
    "user+foo@mail.example.com",
    "user@mail.example.com",
    "mail.example.com",
    ".example.com",
    ".com",
    "user+foo@",
    "user@",
  ]);
});

Deno.test("access(5) parent domains match by name when smtpd_access_maps is in parent_domain_matches_subdomains", async () => {
  const { dict, keys } = recorder({ "example.com": "REJECT" });
  const hit = await searchAccessAddress(dict, "joe@mail.example.com", {
    ...access,
    parentStyle: true,
  });
  assertEquals(hit?.value, "REJECT");
  assertEquals(hit?.key, "example.com");
  assertEquals(keys, ["joe@mail.example.com", "mail.example.com", "example.com"]);
});

Deno.test("access(5) the first key found wins", async () => {
  const { dict } = recorder({ "user@": "U", "example.com": "D" });
  assertEquals((await searchAccessAddress(dict, "user@example.com", access))?.value, "D");
  assertEquals((await searchAccessAddress(dict, "user@example.org", access))?.value, "U");
  assertEquals(await searchAccessAddress(dict, "other@example.org", access), undefined);
});

Deno.test("access(5) host names and domains try the name then parents", async () => {
  const { dict, keys } = recorder({ ".example.com": "OK" });
  const hit = await searchAccessDomain(dict, "a.b.example.com", false);
  assertEquals(hit?.value, "OK");
  assertEquals(keys, ["a.b.example.com", ".b.example.com", ".example.com"]);
  assertEquals(domainKeys("a.b.c", true), ["a.b.c", "b.c", "c"]);
});

Deno.test("access(5) IPv4 addresses try shorter network forms", async () => {
  const { dict, keys } = recorder({ "10.1": "NET" });
  assertEquals((await searchAccessAddressIP(dict, "10.1.2.3"))?.value, "NET");
  assertEquals(keys, ["10.1.2.3", "10.1.2", "10.1"]);
});

Deno.test("access(5) IPv6 addresses drop one field at a time", async () => {
  const { dict, keys } = recorder();
  await searchAccessAddressIP(dict, "2001:db8:1:2::5");
  assertEquals(keys, [
    "2001:db8:1:2::5",
    "2001:db8:1:2:",
    "2001:db8:1:2",
    "2001:db8:1",
    "2001:db8",
    "2001",
  ]);
});

Deno.test("access(5) pattern tables get only the complete key", async () => {
  const { dir, cleanup } = tempDir();
  Deno.writeTextFileSync(`${dir}/re`, "/^example\\.com$/ DOMAIN\n/^user@/ USER\n");
  const re = openMap(`regexp:${dir}/re`);
  assertEquals(await searchAccessAddress(re, "user@example.com", access), {
    value: "USER",
    key: "user@example.com",
    table: re,
  });
  assertEquals(await searchAccessAddress(re, "joe@example.com", access), undefined);
  Deno.writeTextFileSync(`${dir}/cidr`, "10.0.0.0/8 TEN\n");
  const cidr = openMap(`cidr:${dir}/cidr`);
  assertEquals((await searchAccessAddressIP(cidr, "10.9.9.9"))?.value, "TEN");
  cleanup();
});

const local = (d: string) => d === "example.com";
const maps = { recipientDelimiter: "+", isLocalDomain: local, propagateExtension: true };

Deno.test("virtual(5) order: user+ext@domain, user@domain, user+ext, user, @domain", async () => {
  const { dict, keys } = recorder();
  await searchVirtual([dict], "joe+x@example.com", maps);
  assertEquals(keys, ["joe+x@example.com", "joe@example.com", "joe+x", "joe", "@example.com"]);
});

Deno.test("virtual(5) bare user keys apply only in local domains", async () => {
  const { dict, keys } = recorder();
  await searchVirtual([dict], "joe@remote.org", maps);
  assertEquals(keys, ["joe@remote.org", "@remote.org"]);
});

Deno.test("virtual(5) tries each key in every table before the next key", async () => {
  const a = recorder({ "@example.com": "catchall@x" });
  const b = recorder({ "joe@example.com": "joseph@y" });
  const hit = await searchVirtual([a.dict, b.dict], "joe@example.com", maps);
  assertEquals(hit?.value, "joseph@y");
  assertEquals(a.keys, ["joe@example.com"]);
});

Deno.test("virtual(5) propagates an unmatched extension to each result address", async () => {
  const { dict } = recorder({ "joe@example.com": "a@x.org, b" });
  assertEquals(
    (await searchVirtual([dict], "joe+tag@example.com", maps))?.value,
    "a+tag@x.org, b+tag",
  );
  const off = { ...maps, propagateExtension: false };
  assertEquals((await searchVirtual([dict], "joe+tag@example.com", off))?.value, "a@x.org, b");
});

Deno.test("virtual(5) @otherdomain results keep the user", async () => {
  const { dict } = recorder({ "@example.com": "@example.net" });
  assertEquals(
    (await searchVirtual([dict], "joe+t@example.com", maps))?.value,
    "joe+t@example.net",
  );
});

Deno.test("canonical(5) maps one address and keeps a matched extension", async () => {
  const { dict } = recorder({
    "joe+list@example.com": "lists@example.com",
    "joe": "Joe.Smith@example.com",
  });
  assertEquals(
    (await searchCanonical([dict], "joe+list@example.com", maps))?.value,
    "lists@example.com",
  );
  assertEquals(
    (await searchCanonical([dict], "joe+x@example.com", maps))?.value,
    "Joe.Smith+x@example.com",
  );
  assertEquals(await searchCanonical([dict], "joe@remote.org", maps), undefined);
});

Deno.test("relocated(5) returns the text as stored", async () => {
  const { dict, keys } = recorder({ "@example.com": "contact office" });
  const hit = await searchRelocated([dict], "joe+a@example.com", {
    recipientDelimiter: "+",
    isLocalDomain: local,
  });
  assertEquals(hit?.value, "contact office");
  assertEquals(keys, ["joe+a@example.com", "joe@example.com", "joe+a", "joe", "@example.com"]);
});

Deno.test("transport(5) order: address, address without extension, domain, parents, *", async () => {
  const { dict, keys } = recorder({ "*": "smtp:relay" });
  const hit = await searchTransport([dict], "joe+x@mail.example.com", {
    recipientDelimiter: "+",
    parentStyle: false,
  });
  assertEquals(hit?.value, "smtp:relay");
  assertEquals(keys, [
    "joe+x@mail.example.com",
    "joe@mail.example.com",
    "mail.example.com",
    ".example.com",
    ".com",
    "*",
  ]);
});

Deno.test("transport(5) parent style matches subdomains by the parent's name", async () => {
  const { dict } = recorder({ "example.com": "relay:[gw]" });
  const s = { recipientDelimiter: "", parentStyle: true };
  assertEquals((await searchTransport([dict], "a@sub.example.com", s))?.value, "relay:[gw]");
  assertEquals(
    await searchTransport([dict], "a@sub.example.com", { ...s, parentStyle: false }),
    undefined,
  );
});

Deno.test("aliases(5) try the local part with, then without, its extension", async () => {
  const { dict, keys } = recorder({ "joe": "joseph" });
  assertEquals(
    (await searchAliases([dict], "joe+x", { recipientDelimiter: "+" }))?.value,
    "joseph",
  );
  assertEquals(keys, ["joe+x", "joe"]);
});

Deno.test("splitExtension() honours several delimiters and Postfix's owner-/-request rule", () => {
  assertEquals(splitExtension("joe+a-b", "+-"), { base: "joe", extension: "+a-b" });
  assertEquals(splitExtension("owner-list", "-"), { base: "owner-list" });
  assertEquals(splitExtension("list-request", "-"), { base: "list-request" });
  assertEquals(splitExtension("joe-x", "-"), { base: "joe", extension: "-x" });
  assertEquals(splitExtension("+x", "+"), { base: "+x" });
  assertEquals(splitExtension("joe+x", ""), { base: "joe+x" });
});
