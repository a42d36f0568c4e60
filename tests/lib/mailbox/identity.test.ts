import { assert, assertEquals, assertThrows } from "../../assert.ts";
import {
  canSwitchIdentity,
  effectiveUid,
  IdentityError,
  runAs,
} from "../../../lib/ffi/identity.ts";
import { tempDir, testIdentity } from "./fixture.ts";

Deno.test("runAs() creates files as the given user and returns to root afterwards", () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = tempDir();
  const info = runAs(id, () => {
    Deno.writeTextFileSync(`${dir}/f`, "x");
    return Deno.statSync(`${dir}/f`);
  });
  assertEquals([info.uid, info.gid], [id.uid, id.gid]);
  assertEquals(effectiveUid(), 0);
  Deno.writeTextFileSync(`${dir}/g`, "x");
  assertEquals(Deno.statSync(`${dir}/g`).uid, 0);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("runAs() returns to root when the section throws", () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  assertThrows(() => runAs(id, () => Deno.readTextFileSync("/etc/shadow")));
  assertEquals(effectiveUid(), 0);
  assert(canSwitchIdentity());
});

Deno.test("runAs() refuses an asynchronous section", () => {
  assertThrows(() => runAs({ uid: 65534, gid: 65534 }, () => Promise.resolve(1)), IdentityError);
  if (Deno.uid() === 0) assertEquals(effectiveUid(), 0);
});

Deno.test("runAs() nests sections of the same user and refuses another user inside", () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const inner = runAs(id, () => runAs(id, () => effectiveUid()));
  assertEquals(inner, id.uid);
  assertThrows(() => runAs(id, () => runAs({ uid: 65534, gid: 65534 }, () => 1)), IdentityError);
  assertEquals(effectiveUid(), 0);
});

Deno.test("runAs() leaves the runtime's other threads as root", async () => {
  const id = testIdentity();
  if (!id) return; // Needs root.
  const dir = tempDir();
  // An asynchronous write started before the section is opened by one of the
  // runtime's I/O threads while the section runs; it stays root's.
  const pending = Deno.writeTextFile(`${dir}/async`, "x");
  runAs(id, () => {
    const until = Date.now() + 50;
    while (Date.now() < until) Deno.statSync(dir);
  });
  await pending;
  assertEquals(Deno.statSync(`${dir}/async`).uid, 0);
  Deno.removeSync(dir, { recursive: true });
});
