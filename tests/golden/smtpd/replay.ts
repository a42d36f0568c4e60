// Replays one scripted session (sessions.ts) and returns the replies, each
// reply's lines joined by "\n" with the host name replaced by MYHOST.

/** Runs `lines` against 127.0.0.1:port. */
export async function replay(port: number, host: string, lines: string[]): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let buf = "";
  const read = async (): Promise<string> => {
    const out: string[] = [];
    for (;;) {
      const nl = buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        out.push(line);
        if (line.length < 4 || line[3] !== "-") return out.join("\n").replaceAll(host, "MYHOST");
        continue;
      }
      const chunk = new Uint8Array(8192);
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) return out.length ? out.join("\n") : "<EOF>";
      buf += dec.decode(chunk.subarray(0, n));
    }
  };
  const replies = [await read()];
  for (const raw of lines) {
    const line = raw.replaceAll("MYHOST", host);
    if (line.startsWith("> ")) {
      await conn.write(enc.encode(line.slice(2) + "\r\n"));
      continue;
    }
    await conn.write(enc.encode(line + "\r\n")).catch(() => 0);
    replies.push(await read());
  }
  conn.close();
  // Queue ids differ from run to run.
  return replies.map((r) => r.replace(/queued as [0-9A-Za-z]+/, "queued as QUEUEID"));
}
