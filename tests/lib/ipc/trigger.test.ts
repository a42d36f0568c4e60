import { assertEquals, assertRejects } from "../../assert.ts";
import { sendTrigger } from "../../../lib/ipc/trigger.ts";
import { closeFd, openFifo, readFd } from "../../../lib/ffi/libc.ts";

Deno.test("sendTrigger() writes its byte to a fifo and to a unix socket", async () => {
  const dir = await Deno.makeTempDir();
  const fd = openFifo(`${dir}/fifo`, 0o622);
  await sendTrigger(`${dir}/fifo`, "W");
  const buf = new Uint8Array(4);
  assertEquals(readFd(fd, buf), 1);
  assertEquals(buf[0], "W".charCodeAt(0));
  closeFd(fd);
  const listener = Deno.listen({ transport: "unix", path: `${dir}/sock` });
  const got = (async () => {
    const conn = await listener.accept();
    const data = new Uint8Array(8);
    const n = await conn.read(data);
    conn.close();
    return new TextDecoder().decode(data.subarray(0, n ?? 0));
  })();
  await sendTrigger(`${dir}/sock`, "D");
  assertEquals(await got, "D");
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sendTrigger() to a missing service fails", async () => {
  await assertRejects(() => sendTrigger("/nonexistent/public/qmgr", "W"), Deno.errors.NotFound);
});
