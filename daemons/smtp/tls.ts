// The SMTP client's TLS (node:tls), as TLS_README describes for Postfix:
// the security level (smtp_tls_security_level, or a smtp_tls_policy_maps
// entry for the next hop with its match= attribute), STARTTLS or wrapper
// mode, certificate checks per level (encrypt: none; verify: trusted chain
// and the server's host name; secure: trusted chain and the next-hop domain;
// fingerprint: the certificate or public-key digest), and Postfix's log line
// `Verified TLS connection established to h[a]:25: TLSv1.3 with cipher ...`.
//
// DANE (RFC 7672, levels dane and dane-only) with smtp_dns_support_level =
// dnssec: the server's TLSA records, when DNSSEC-validated, authenticate it
// (DANE-EE: the certificate or its key; DANE-TA: a trust anchor in the
// chain the server sends, plus its name). Without secure TLSA records
// `dane` is `may` and `dane-only` defers; with only unusable ones (PKIX
// usages) TLS is mandatory but unauthenticated, as Postfix does. Not
// checked: whether the MX host's address records were themselves signed.

import * as tls from "node:tls";
import { Buffer } from "node:buffer";
import { createHash, X509Certificate } from "node:crypto";
import { info, warn } from "../../lib/log.ts";
import { openMap } from "../../maps/mod.ts";
import type { Dict } from "../../maps/mod.ts";
import type { Destination, DnsLookup, ServerAddress } from "./nexthop.ts";
import type { SmtpSettings } from "./settings.ts";
import type { ServerFeatures } from "./session.ts";
import { ConversationTimeout, type SmtpStream } from "./stream.ts";
import { type Failure, localFailure, saidFailure, serverName } from "./failure.ts";

/** The failure text of a TLS handshake that did not complete. */
export const TLS_HANDSHAKE_FAILURE = "Cannot start TLS: handshake failure";

/** One usable TLSA record (RFC 6698): DANE-TA(2) or DANE-EE(3). */
export interface TlsaRecord {
  usage: number;
  selector: number;
  mtype: number;
  /** The association data, lower-case hex. */
  data: string;
}

/** The TLS policy for one server. */
export interface TlsPolicy {
  level: string;
  /** The server's DNSSEC-validated TLSA records (level dane). */
  tlsa?: TlsaRecord[];
  /** match= patterns (secure: host names; fingerprint: digests). */
  match: string[];
  /** The next-hop domain (secure level's `nexthop` and `dot-nexthop`). */
  nexthop: string;
}

const LEVELS = new Set([
  "none",
  "may",
  "encrypt",
  "verify",
  "secure",
  "fingerprint",
  "dane",
  "dane-only",
]);

// Opened once per settings (one per process), on first use.
const policyTables = new WeakMap<SmtpSettings, Dict[]>();
let tableCwd = "";

/** Sets the directory relative table names are opened from. */
export function setTlsTableDirectory(dir: string): void {
  tableCwd = dir;
}

/** The policy for a destination: smtp_tls_policy_maps first, then the level parameter. */
export async function tlsPolicyFor(
  s: SmtpSettings,
  dest: Destination,
  server: ServerAddress,
  dns?: DnsLookup,
): Promise<TlsPolicy | { failure: Failure }> {
  let text = s.tls.level || "none";
  if (s.tls.policyMaps.length) {
    let tables = policyTables.get(s);
    if (!tables) {
      tables = s.tls.policyMaps.map((spec) => openMap(spec, { cwd: tableCwd || undefined }));
      policyTables.set(s, tables);
    }
    const keys = [dest.text, dest.name];
    const labels = dest.name.split(".");
    for (let i = 1; i < labels.length; i++) keys.push("." + labels.slice(i).join("."));
    try {
      search:
      for (const key of keys) {
        for (const t of tables) {
          const v = await t.lookup(key);
          if (v !== undefined) {
            text = v;
            break search;
          }
        }
      }
    } catch (err) {
      const msg = `TLS policy lookup error for ${dest.text}: ${(err as Error).message}`;
      warn(msg);
      return { failure: localFailure(server, "4.7.5", msg, false) };
    }
  }
  const words = text.trim().split(/\s+/);
  let level = (words[0] || "none").toLowerCase();
  if (!LEVELS.has(level)) {
    const msg = `${dest.text}: unknown TLS policy '${words[0]}' for ${dest.text}`;
    warn(msg);
    return { failure: localFailure(server, "4.7.5", "client TLS configuration problem", false) };
  }
  const match: string[] = [];
  for (const w of words.slice(1)) {
    const m = /^match=(.*)$/i.exec(w);
    if (m) match.push(...m[1].split(/[|:]/).filter(Boolean));
  }
  if (level === "dane" || level === "dane-only") {
    return await danePolicy(level, s, dest, server, match, dns);
  }
  if (server.unix && level === "may") level = "none";
  if (level === "fingerprint") {
    // Fingerprints are colon-separated hex: rejoin what the split above broke up.
    const fps = words.slice(1).filter((w) => /^match=/i.test(w)).flatMap((w) =>
      w.slice(6).split("|")
    );
    const all = [...fps, ...s.tls.fingerprintCertMatch];
    if (!all.length) {
      warn(
        `nexthop domain ${dest.name}: configured at fingerprint security level, but with no fingerprints to match.`,
      );
    }
    return { level, match: all.map(normalFingerprint), nexthop: dest.name };
  }
  return { level, match, nexthop: dest.name };
}

function normalFingerprint(text: string): string {
  return text.replace(/:/g, "").toLowerCase();
}

/** The STARTTLS step of a conversation. */
export function tlsHook(
  stream: SmtpStream,
  server: ServerAddress,
  s: SmtpSettings,
  policy: TlsPolicy,
): (features: ServerFeatures) => Promise<Failure | "restart" | undefined> {
  return async (features) => {
    const mandatory = policy.level !== "may";
    if (!features.starttls) {
      if (!mandatory) return undefined;
      return localFailure(
        server,
        "4.7.4",
        `TLS is required, but was not offered by host ${serverName(server)}`,
      );
    }
    await stream.write("STARTTLS\r\n", s.timeouts.starttls);
    const r = await stream.readReply(s.timeouts.starttls);
    if (r.code !== 220) {
      if (!mandatory) return undefined;
      return {
        ...saidFailure(server, r, "STARTTLS command"),
        dsn: "4.7.5",
        hard: false,
        text: `TLS is required, but host ${serverName(server)} refused to start TLS: ${r.text}`,
      };
    }
    const failure = await handshake(stream, server, s, policy);
    return failure ?? "restart";
  };
}

/** TLS at once after connecting (smtp_tls_wrappermode). */
export function wrapperTls(
  stream: SmtpStream,
  server: ServerAddress,
  s: SmtpSettings,
  policy: TlsPolicy,
): Promise<Failure | undefined> {
  return handshake(stream, server, s, policy);
}

function readPem(path: string): string[] {
  try {
    return [Deno.readTextFileSync(path)];
  } catch (err) {
    warn(`cannot read CA file ${path}: ${(err as Error).message}`);
    return [];
  }
}

/** Trust anchors: smtp_tls_CAfile and the certificates in smtp_tls_CApath. */
function trustAnchors(s: SmtpSettings): string[] {
  const out: string[] = [];
  if (s.tls.caFile) out.push(...readPem(s.tls.caFile));
  if (s.tls.caPath) {
    try {
      for (const e of Deno.readDirSync(s.tls.caPath)) {
        if (e.isFile || e.isSymlink) out.push(...readPem(`${s.tls.caPath}/${e.name}`));
      }
    } catch (err) {
      warn(`cannot read CA directory ${s.tls.caPath}: ${(err as Error).message}`);
    }
  }
  return out;
}

function clientCertificate(s: SmtpSettings): { cert?: string; key?: string } {
  if (!s.tls.certFile) return {};
  try {
    return {
      cert: Deno.readTextFileSync(s.tls.certFile),
      key: Deno.readTextFileSync(s.tls.keyFile || s.tls.certFile),
    };
  } catch (err) {
    warn(`cannot load client certificate ${s.tls.certFile}: ${(err as Error).message}`);
    return {};
  }
}

/** Names a verified certificate must match at this level. */
function namesToMatch(server: ServerAddress, s: SmtpSettings, policy: TlsPolicy, nexthop: string) {
  const strategies = policy.match.length
    ? policy.match
    : policy.level === "secure"
    ? s.tls.secureCertMatch
    : s.tls.verifyCertMatch;
  const names: string[] = [];
  for (const m of strategies) {
    if (m === "hostname") names.push(server.host);
    else if (m === "nexthop") names.push(nexthop);
    else if (m === "dot-nexthop") names.push("." + nexthop);
    else names.push(m);
  }
  return names;
}

function nameMatches(cert: tls.PeerCertificate, names: string[]): boolean {
  for (const name of names) {
    if (name.startsWith(".")) {
      // A sub-domain of the name: any certificate name ending in it.
      const alt = (cert.subjectaltname ?? "").split(/,\s*/).map((x) => x.replace(/^DNS:/, ""));
      const cn = typeof cert.subject?.CN === "string" ? [cert.subject.CN] : [];
      if ([...alt, ...cn].some((n) => n.toLowerCase().endsWith(name.toLowerCase()))) return true;
      continue;
    }
    if (tls.checkServerIdentity(name, cert) === undefined) return true;
  }
  return false;
}

function fingerprints(cert: tls.PeerCertificate, digest: string): string[] {
  const out: string[] = [];
  try {
    out.push(createHash(digest).update(cert.raw).digest("hex"));
    const pub = new X509Certificate(cert.raw).publicKey.export({ type: "spki", format: "der" });
    out.push(createHash(digest).update(pub).digest("hex"));
  } catch (err) {
    warn(`fingerprint: ${(err as Error).message}`);
  }
  return out;
}

function cipherBits(name: string): number {
  if (/CHACHA20|AES_?256|AES256/i.test(name)) return 256;
  if (/AES_?128|AES128/i.test(name)) return 128;
  return 0;
}

/** Runs the handshake and the level's certificate checks; logs the TLS line. */
async function handshake(
  stream: SmtpStream,
  server: ServerAddress,
  s: SmtpSettings,
  policy: TlsPolicy,
): Promise<Failure | undefined> {
  const ca = trustAnchors(s);
  const sni = s.tls.servername === "hostname"
    ? server.host
    : s.tls.servername && s.tls.servername !== "none"
    ? s.tls.servername
    : undefined;
  const versions = protocolRange(
    policy.level === "may" ? s.tls.protocols : s.tls.mandatoryProtocols,
  );
  let secure: tls.TLSSocket;
  try {
    secure = await stream.startTls({
      ...versions,
      rejectUnauthorized: false,
      // Names are checked below, per level: `authorized` then says only
      // whether the chain leads to a trust anchor.
      checkServerIdentity: () => undefined,
      ...(ca.length ? { ca } : {}),
      ...clientCertificate(s),
      ...(sni && !/^[\d.:]+$/.test(sni) ? { servername: sni } : {}),
    }, s.timeouts.starttls);
  } catch (err) {
    const why = err instanceof ConversationTimeout ? "timeout" : (err as Error).message;
    info(`SSL_connect error to ${serverName(server)}:${server.port}: ${why}`);
    return localFailure(server, "4.7.5", TLS_HANDSHAKE_FAILURE);
  }
  const cert = secure.getPeerCertificate(false);
  const hasCert = !!cert && Object.keys(cert).length > 0;
  const trusted = hasCert && secure.authorized && ca.length > 0;
  let verified = false;
  let failure: Failure | undefined;
  const nexthop = policy.nexthop;
  if (policy.level === "fingerprint") {
    const got = hasCert ? fingerprints(cert, s.tls.fingerprintDigest) : [];
    verified = got.some((f) => policy.match.includes(f));
    if (!verified) failure = localFailure(server, "4.7.5", "Server certificate not verified");
  } else if (policy.level === "dane") {
    verified = hasCert && daneMatches(secure, policy.tlsa ?? [], [server.host, policy.nexthop]);
    if (!verified) failure = localFailure(server, "4.7.5", "Server certificate not verified");
  } else if (policy.level === "verify" || policy.level === "secure") {
    verified = trusted && nameMatches(cert, namesToMatch(server, s, policy, nexthop));
    if (!verified) {
      if (hasCert && !trusted && s.tls.loglevel >= 1) {
        info(
          `certificate verification failed for ${serverName(server)}:${server.port}: ${
            secure.authorizationError ?? "untrusted issuer"
          }`,
        );
      }
      failure = localFailure(server, "4.7.5", "Server certificate not verified");
    }
  }
  const kind = verified ? "Verified" : trusted ? "Trusted" : hasCert ? "Untrusted" : "Anonymous";
  const c = secure.getCipher();
  const bits = cipherBits(c.standardName ?? c.name);
  // smtp_tls_loglevel 0 logs no TLS activity; 1 the summary line.
  if (s.tls.loglevel >= 1) {
    info(
      `${kind} TLS connection established to ${serverName(server)}:${server.port}: ` +
        `${secure.getProtocol()} with cipher ${c.name} (${bits}/${bits} bits)` +
        handshakeDetails(secure, hasCert ? cert : undefined),
    );
  }
  return failure;
}

/**
 * Postfix 3.7's tail of the TLS line: ` key-exchange X25519 server-signature
 * RSA-PSS (2048 bits) server-digest SHA256`. node:tls does not say which
 * signature scheme the handshake used; it is inferred from the key type and
 * protocol (TLS 1.3 signs with RSA-PSS; ECDSA's digest follows its curve).
 */
function handshakeDetails(secure: tls.TLSSocket, cert: tls.PeerCertificate | undefined): string {
  let out = "";
  const kx = secure.getEphemeralKeyInfo();
  if (kx && "name" in kx && kx.name) out += ` key-exchange ${kx.name}`;
  else if (kx && "type" in kx && kx.type === "DH" && kx.size) {
    out += ` key-exchange FFDHE${kx.size}`;
  }
  if (!cert) return out;
  const details = cert as tls.PeerCertificate & { asn1Curve?: string; nistCurve?: string };
  if (details.modulus) {
    const sig = secure.getProtocol() === "TLSv1.3" ? "RSA-PSS" : "RSA";
    out += ` server-signature ${sig} (${cert.bits} bits) server-digest SHA256`;
  } else if (details.asn1Curve || details.nistCurve) {
    const size = cert.bits ?? 256;
    const digest = size >= 521 ? "SHA512" : size >= 384 ? "SHA384" : "SHA256";
    out += ` server-signature ECDSA (${
      details.nistCurve ?? details.asn1Curve
    }) server-digest ${digest}`;
  }
  return out;
}

const VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;
type Version = typeof VERSIONS[number];

/**
 * smtp_tls_protocols / smtp_tls_mandatory_protocols as a version range:
 * `>=TLSv1.2`, `<=TLSv1.2`, or exclusions (`!SSLv3, !TLSv1`) that trim the
 * ends of the range (SSLv2/SSLv3 are never spoken).
 */
export function protocolRange(list: string[]): { minVersion?: Version; maxVersion?: Version } {
  let lo = 0;
  let hi = VERSIONS.length - 1;
  const excluded = new Set<string>();
  for (const item of list.flatMap((x) => x.split(":")).map((x) => x.trim()).filter(Boolean)) {
    const ge = /^>=\s*(\S+)$/.exec(item);
    const le = /^<=\s*(\S+)$/.exec(item);
    if (ge) lo = Math.max(lo, VERSIONS.indexOf(ge[1] as Version));
    else if (le && VERSIONS.includes(le[1] as Version)) {
      hi = Math.min(hi, VERSIONS.indexOf(le[1] as Version));
    } else if (item.startsWith("!")) excluded.add(item.slice(1));
  }
  if (lo < 0) lo = 0;
  while (lo <= hi && excluded.has(VERSIONS[lo])) lo++;
  while (hi >= lo && excluded.has(VERSIONS[hi])) hi--;
  if (lo > hi) return {};
  return { minVersion: VERSIONS[lo], maxVersion: VERSIONS[hi] };
}

/** The dane/dane-only policy of a server from its TLSA records (RFC 7672 2.2). */
async function danePolicy(
  level: string,
  s: SmtpSettings,
  dest: Destination,
  server: ServerAddress,
  match: string[],
  dns?: DnsLookup,
): Promise<TlsPolicy | { failure: Failure }> {
  const only = level === "dane-only";
  const base = { match, nexthop: dest.name };
  if (server.unix) return { ...base, level: "none" };
  if (!s.dnssec || !dns) {
    warn(
      `${dest.text}: ${level} TLS security level requires ${s.prefix}_dns_support_level = dnssec` +
        (only ? "" : '; using "may"'),
    );
    if (only) {
      return { failure: localFailure(server, "4.7.5", "client TLS configuration problem", false) };
    }
    return { ...base, level: "may" };
  }
  const name = `_${server.port}._tcp.${server.host}`;
  const got = await dns.query(name, "TLSA");
  if (got.status === "tempfail") {
    return {
      failure: localFailure(
        server,
        "4.7.5",
        `TLSA lookup error for ${server.host}:${server.port}`,
        false,
      ),
    };
  }
  const secure = got.status === "ok" && got.ad === true;
  if (!secure) {
    if (!only) return { ...base, level: "may" };
    return {
      failure: localFailure(
        server,
        "4.7.5",
        `no TLSA records found for ${server.host}:${server.port}`,
        false,
      ),
    };
  }
  const usable: TlsaRecord[] = [];
  for (const r of got.records) {
    const [usage, selector, mtype, ...hex] = r.value.trim().split(/\s+/);
    const rec = {
      usage: Number(usage),
      selector: Number(selector),
      mtype: Number(mtype),
      data: hex.join("").toLowerCase(),
    };
    if ((rec.usage === 2 || rec.usage === 3) && rec.selector <= 1 && rec.mtype <= 2) {
      usable.push(rec);
    }
  }
  // RFC 7672 2.2: TLSA records that are all unusable still mean TLS is supported.
  if (!usable.length) return { ...base, level: "encrypt" };
  return { ...base, level: "dane", tlsa: usable };
}

/** The chain the server sent, leaf first. */
function peerChain(secure: tls.TLSSocket): tls.DetailedPeerCertificate[] {
  const out: tls.DetailedPeerCertificate[] = [];
  let c: tls.DetailedPeerCertificate | undefined = secure.getPeerCertificate(true);
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  while (c && c.raw && !out.some((x) => same(x.raw, c!.raw))) {
    out.push(c);
    c = c.issuerCertificate;
  }
  return out;
}

function tlsaMatches(cert: tls.PeerCertificate, r: TlsaRecord): boolean {
  try {
    const data = r.selector === 0
      ? cert.raw
      : new X509Certificate(cert.raw).publicKey.export({ type: "spki", format: "der" });
    const digest = r.mtype === 0
      ? Buffer.from(data).toString("hex")
      : createHash(r.mtype === 1 ? "sha256" : "sha512").update(data).digest("hex");
    return digest === r.data;
  } catch {
    return false;
  }
}

/**
 * RFC 7672 3: DANE-EE matches the server's certificate (no name or date
 * check); DANE-TA matches a certificate of the chain that signs down to the
 * server's, whose name must then be the MX host or the next-hop domain.
 */
function daneMatches(secure: tls.TLSSocket, tlsa: TlsaRecord[], names: string[]): boolean {
  const chain = peerChain(secure);
  if (!chain.length) return false;
  if (tlsa.some((r) => r.usage === 3 && tlsaMatches(chain[0], r))) return true;
  for (let depth = 0; depth < chain.length; depth++) {
    if (!tlsa.some((r) => r.usage === 2 && tlsaMatches(chain[depth], r))) continue;
    if (signedDown(chain, depth) && nameMatches(chain[0], names)) return true;
  }
  return false;
}

/** Whether each certificate below `depth` is signed by the one above it. */
function signedDown(chain: tls.PeerCertificate[], depth: number): boolean {
  try {
    for (let i = 0; i < depth; i++) {
      const child = new X509Certificate(chain[i].raw);
      const parent = new X509Certificate(chain[i + 1].raw);
      if (!child.verify(parent.publicKey)) return false;
    }
    return true;
  } catch {
    return false;
  }
}
