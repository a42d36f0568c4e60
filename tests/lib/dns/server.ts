// A small authoritative DNS server for tests: UDP and TCP on 127.0.0.1 at a
// free port, answering from records given in code, with failure modes per name
// (SERVFAIL, REFUSED, FORMERR, NXDOMAIN, no answer, truncation forcing TCP,
// garbage, wrong id, FORMERR for EDNS0 queries). Point programs at it with
// `posthorn_dns_servers = [127.0.0.1]:PORT` (server.spec) or
// `new Resolver({ servers: [server.spec] })`. `start(records, { port: 53 })`
// takes a fixed port (inside a network namespace: see make_smtpd_refs.ts).
//
//   const dns = await TestDnsServer.start([
//     { name: "example.com", type: "MX", value: "mx.example.com", preference: 10 },
//     { name: "mx.example.com", type: "A", value: "192.0.2.1" },
//   ]);
//   dns.fail("broken.example", "servfail");     // every type of that name
//   dns.fail("slow.example", "drop", "A");      // only A queries
//   dns.ad = true;                               // set the AD bit on answers
//   ... dns.queries lists what was asked ...
//   await dns.close();
//
// Answers: records of the asked type at the name; a CNAME at the name is given
// with the target's records when the target is in the same zone (the same last
// two labels; other targets are left to the client to ask); a name with other
// records only gives NODATA; other names NXDOMAIN. UDP replies larger than 512
// bytes (or the query's EDNS size) are truncated (TC) as a real server does.

import dgram from "node:dgram";
import {
  canonicalName,
  CLASS_IN,
  decodeMessage,
  defaultFlags,
  encodeMessage,
  type Message,
  RCODE,
  type ResourceRecord,
  TYPE,
} from "../../../lib/dns/message.ts";

/** A zone record. `value` as in lib/dns DnsRecord; SOA: "mname rname serial refresh retry expire min". */
export interface ZoneRecord {
  name: string;
  type: keyof typeof TYPE;
  value: string;
  ttl?: number;
  preference?: number;
}

/** How the server misbehaves for a name. */
export type FailureMode =
  | "servfail"
  | "refused"
  | "formerr"
  | "nxdomain"
  | "drop"
  | "truncate"
  | "garbage"
  | "wrongid"
  | "noedns";

/** One query the server received. */
export interface LoggedQuery {
  name: string;
  type: string;
  transport: "udp" | "tcp";
  dnssecOk: boolean;
}

/** The test DNS server. */
export class TestDnsServer {
  /** Set the AD bit on every answer. */
  ad = false;
  /** Queries received, oldest first. */
  readonly queries: LoggedQuery[] = [];
  private records: ZoneRecord[];
  private failures = new Map<string, FailureMode>();
  private tcpConns = new Set<Deno.Conn>();

  private constructor(
    private udp: dgram.Socket,
    private tcp: Deno.TcpListener,
    readonly port: number,
    records: ZoneRecord[],
  ) {
    this.records = [...records];
  }

  /**
   * Starts a server on 127.0.0.1 with UDP and TCP on the same free port (or
   * on `options.port`, e.g. 53 inside a network namespace of its own).
   */
  static async start(
    records: ZoneRecord[] = [],
    options: { port?: number } = {},
  ): Promise<TestDnsServer> {
    for (let tries = 0; tries < 20; tries++) {
      const udp = dgram.createSocket("udp4");
      const port = await new Promise<number>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(options.port ?? 0, "127.0.0.1", () => resolve(udp.address().port));
      });
      let tcp: Deno.TcpListener;
      try {
        tcp = Deno.listen({ hostname: "127.0.0.1", port });
      } catch (err) {
        udp.close();
        if (options.port !== undefined) throw err;
        continue;
      }
      const server = new TestDnsServer(udp, tcp, port, records);
      server.serve();
      return server;
    }
    throw new Error("test DNS server: no free port");
  }

  /** `[127.0.0.1]:PORT`, for posthorn_dns_servers and Resolver({servers}). */
  get spec(): string {
    return `[127.0.0.1]:${this.port}`;
  }

  /** Adds records. */
  add(...records: ZoneRecord[]): void {
    this.records.push(...records);
  }

  /** Replaces all records. */
  setRecords(records: ZoneRecord[]): void {
    this.records = [...records];
  }

  /** Makes queries for a name (of one type, or any type) fail in a given way. */
  fail(name: string, mode: FailureMode, type?: keyof typeof TYPE): void {
    this.failures.set(failureKey(name, type), mode);
  }

  /** Clears all failure modes. */
  clearFailures(): void {
    this.failures.clear();
  }

  /** Stops both listeners and any open TCP connection. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
    try {
      this.tcp.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.tcpConns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  private serve(): void {
    this.udp.on("message", (data: Uint8Array, rinfo: { address: string; port: number }) => {
      const reply = this.handle(new Uint8Array(data), "udp");
      if (reply) this.udp.send(reply, rinfo.port, rinfo.address);
    });
    (async () => {
      try {
        for await (const conn of this.tcp) this.serveTcp(conn);
      } catch {
        // Listener closed.
      }
    })();
  }

  private async serveTcp(conn: Deno.Conn): Promise<void> {
    this.tcpConns.add(conn);
    try {
      for (;;) {
        const head = await readExactly(conn, 2);
        if (!head) break;
        const body = await readExactly(conn, (head[0] << 8) | head[1]);
        if (!body) break;
        const reply = this.handle(body, "tcp");
        if (!reply) continue;
        const framed = new Uint8Array(reply.length + 2);
        framed[0] = reply.length >> 8;
        framed[1] = reply.length & 0xff;
        framed.set(reply, 2);
        let off = 0;
        while (off < framed.length) off += await conn.write(framed.subarray(off));
      }
    } catch {
      // Client went away.
    } finally {
      this.tcpConns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Builds the wire reply to one query, or null to stay silent. */
  private handle(data: Uint8Array, transport: "udp" | "tcp"): Uint8Array | null {
    let query: Message;
    try {
      query = decodeMessage(data);
    } catch {
      return null;
    }
    const q = query.questions[0];
    if (!q || query.flags.qr) return null;
    const typeLabel = Object.entries(TYPE).find(([, v]) => v === q.type)?.[0] ?? `TYPE${q.type}`;
    this.queries.push({
      name: canonicalName(q.name),
      type: typeLabel,
      transport,
      dnssecOk: query.edns?.do ?? false,
    });
    const mode = this.failures.get(failureKey(q.name, typeLabel)) ??
      this.failures.get(failureKey(q.name));
    const reply: Message = {
      id: query.id,
      flags: defaultFlags({ qr: true, aa: true, rd: query.flags.rd, ad: this.ad }),
      questions: query.questions,
      answers: [],
      authority: [],
      additional: [],
      edns: query.edns ? { udpSize: 1232, do: query.edns.do } : undefined,
    };
    switch (mode) {
      case "drop":
        return null;
      case "garbage": {
        const junk = new Uint8Array(7);
        junk[0] = query.id >> 8;
        junk[1] = query.id & 0xff;
        junk.set([0x81, 0x80, 0xff, 0xff, 0xff], 2);
        return junk;
      }
      case "servfail":
        reply.flags.rcode = RCODE.SERVFAIL;
        reply.flags.ad = false;
        return encodeMessage(reply);
      case "refused":
        reply.flags.rcode = RCODE.REFUSED;
        reply.flags.ad = false;
        return encodeMessage(reply);
      case "formerr":
        reply.flags.rcode = RCODE.FORMERR;
        reply.flags.ad = false;
        return encodeMessage(reply);
      case "nxdomain":
        reply.flags.rcode = RCODE.NXDOMAIN;
        return encodeMessage(reply);
      case "noedns":
        // An old server: FORMERR (and no OPT record) for a query with EDNS0.
        if (query.edns) {
          reply.flags.rcode = RCODE.FORMERR;
          reply.edns = undefined;
          return encodeMessage(reply);
        }
    }
    this.answer(reply, canonicalName(q.name), q.type);
    if (mode === "wrongid") reply.id = (reply.id + 1) & 0xffff;
    if (mode === "truncate" && transport === "udp") return truncated(reply);
    const wire = encodeMessage(reply);
    const limit = Math.max(512, query.edns?.udpSize ?? 512);
    if (transport === "udp" && wire.length > limit) return truncated(reply);
    return wire;
  }

  /** Fills in answers (following in-zone CNAMEs) and the rcode. */
  private answer(reply: Message, name: string, qtype: number): void {
    let current = name;
    for (let hops = 0; hops < 10; hops++) {
      const atName = this.records.filter((r) => canonicalName(r.name) === current);
      if (atName.length === 0) {
        // An alias whose target is outside what we hold still answers NOERROR.
        if (hops === 0) reply.flags.rcode = RCODE.NXDOMAIN;
        return;
      }
      const matching = atName.filter((r) => TYPE[r.type] === qtype);
      if (matching.length) {
        reply.answers.push(...matching.map(toResourceRecord));
        return;
      }
      const alias = atName.find((r) => r.type === "CNAME");
      if (!alias) return; // NODATA
      reply.answers.push(toResourceRecord(alias));
      const target = canonicalName(alias.value);
      // Only targets under the same last two labels count as this server's zone.
      if (zoneOf(target) !== zoneOf(current)) return;
      current = target;
    }
  }
}

function toResourceRecord(r: ZoneRecord): ResourceRecord {
  return {
    name: r.name,
    type: TYPE[r.type],
    class: CLASS_IN,
    ttl: r.ttl ?? 300,
    value: r.value,
    preference: r.preference,
  };
}

/** The reply with no records and TC set. */
function truncated(reply: Message): Uint8Array {
  return encodeMessage({
    ...reply,
    flags: { ...reply.flags, tc: true },
    answers: [],
    authority: [],
    additional: [],
  });
}

function zoneOf(name: string): string {
  return name.split(".").slice(-2).join(".");
}

function failureKey(name: string, type?: string): string {
  return `${canonicalName(name)}/${type ?? "*"}`;
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) return null;
    off += got;
  }
  return out;
}
