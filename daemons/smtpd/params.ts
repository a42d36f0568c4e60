// MAIL FROM and RCPT TO arguments: the address in angle brackets (or bare),
// its syntax check, and the ESMTP parameters (SIZE, BODY, RET, ENVID,
// SMTPUTF8, AUTH, XVERP; NOTIFY, ORCPT) with Postfix's replies for bad ones.

import type { SmtpReply } from "../../lib/smtp/reply.ts";
import { verpDelimitersError } from "../../lib/verp.ts";

/** The address and parameter words after `FROM:` or `TO:`, or why there are none. */
export interface AddressArg {
  /** The address as the client wrote it between the brackets. */
  raw: string;
  /** The internal form: source route dropped, quotes removed where not needed. */
  address: string;
  params: string[];
}

/**
 * Splits `FROM:<a@b> SIZE=10`; "syntax" when the keyword is missing,
 * "address" when the address is malformed.
 */
export function parseAddressArg(args: string, keyword: string): AddressArg | "syntax" | "address" {
  const head = args.slice(0, keyword.length + 1).toUpperCase();
  if (head !== `${keyword}:`) return "syntax";
  let rest = args.slice(keyword.length + 1).replace(/^\s+/, "");
  let raw: string;
  if (rest.startsWith("<")) {
    let i = 1;
    let quoted = false;
    for (; i < rest.length; i++) {
      const ch = rest[i];
      if (ch === "\\") i++;
      else if (ch === '"') quoted = !quoted;
      else if (ch === ">" && !quoted) break;
    }
    if (i >= rest.length) return "address";
    raw = rest.slice(1, i);
    rest = rest.slice(i + 1);
    if (rest !== "" && !/^\s/.test(rest)) return "address";
  } else {
    const sp = rest.search(/\s/);
    raw = sp < 0 ? rest : rest.slice(0, sp);
    rest = sp < 0 ? "" : rest.slice(sp);
    if (raw === "") return "syntax";
  }
  const address = internalAddress(raw);
  if (address === undefined) return "address";
  return { raw, address, params: rest.split(/\s+/).filter(Boolean) };
}

/** The internal form of an address, or undefined when its syntax is bad. */
export function internalAddress(raw: string): string | undefined {
  // RFC 5321 4.1.2: a source route "@a,@b:" before the mailbox is ignored.
  let text = raw;
  const route = /^@[^:]*:/.exec(text);
  if (route) text = text.slice(route[0].length);
  let out = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    const code = ch.charCodeAt(0);
    if (code < 32 || code === 127) return undefined;
    if (ch === "\\" && i + 1 < text.length) {
      out += text[++i];
      continue;
    }
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (
      !quoted &&
      (ch === " " || ch === "\t" || ch === "<" || ch === ">" || ch === "(" || ch === ")" ||
        ch === "," || ch === ";")
    ) return undefined;
    out += ch;
  }
  if (quoted) return undefined;
  return out;
}

/** The MAIL FROM parameters Postfix understands. */
export interface MailParams {
  size: number;
  body: string;
  ret: number;
  envid: string;
  smtputf8: boolean;
  /** XVERP delimiters ("" when XVERP was not given). */
  verp: string;
}

/** What MAIL FROM's XVERP parameter needs to know. */
export interface VerpOptions {
  /** The client is in smtpd_authorized_verp_clients. */
  allowed: boolean;
  /** default_verp_delimiters, for a bare XVERP. */
  defaults: string;
  /** verp_delimiter_filter. */
  filter: string;
  /** The sender is the null address (XVERP makes no sense then). */
  nullSender: boolean;
}

const r = (code: number, dsn: string, text: string): SmtpReply => ({ code, dsn, text });

/** Decodes RFC 3461 xtext ("+2B" for "+"); undefined when malformed. */
export function decodeXtext(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    const code = ch.charCodeAt(0);
    if (code < 33 || code > 126 || ch === "=") return undefined;
    if (ch === "+") {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else out += ch;
  }
  return out;
}

/** Parses MAIL FROM parameters; a reply when one is bad. */
export function parseMailParams(
  params: string[],
  sizeLimit: number,
  verp?: VerpOptions,
): MailParams | SmtpReply {
  const p: MailParams = { size: 0, body: "", ret: 0, envid: "", smtputf8: false, verp: "" };
  for (const word of params) {
    const eq = word.indexOf("=");
    const name = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? "" : word.slice(eq + 1);
    if (name === "SIZE" && eq > 0) {
      if (!/^\d+$/.test(value)) return r(501, "5.5.4", "Bad message size syntax");
      const n = Number(value);
      if (sizeLimit > 0 && n > sizeLimit) {
        return r(552, "5.3.4", "Message size exceeds fixed limit");
      }
      p.size = n;
    } else if (name === "BODY" && eq > 0 && /^(7BIT|8BITMIME)$/i.test(value)) {
      p.body = value.toUpperCase();
    } else if (name === "RET" && eq > 0) {
      const v = value.toUpperCase();
      if (p.ret || (v !== "FULL" && v !== "HDRS")) {
        return r(501, "5.5.4", "Bad RET parameter syntax");
      }
      p.ret = v === "FULL" ? 1 : 2;
    } else if (name === "ENVID" && eq > 0) {
      const decoded = decodeXtext(value);
      if (p.envid || !value || decoded === undefined) {
        return r(501, "5.5.4", "Bad ENVID parameter syntax");
      }
      p.envid = decoded;
    } else if (name === "SMTPUTF8" && eq < 0) {
      p.smtputf8 = true;
    } else if (name === "XVERP" && verp?.allowed) {
      if (verp.nullSender) return r(503, "5.5.4", "Error: XVERP requires non-null sender");
      const delims = eq < 0 ? verp.defaults : value;
      if (verpDelimitersError(delims, verp.filter)) {
        return r(501, "5.5.4", `Error: XVERP needs two characters from ${verp.filter}`);
      }
      p.verp = delims;
    } else if (name === "AUTH" && eq > 0) {
      // Accepted and ignored without SASL, as Postfix does for an unauthenticated client.
    } else {
      return r(555, "5.5.4", `Unsupported option: ${word}`);
    }
  }
  return p;
}

/** DSN NOTIFY bits, as Postfix stores them. */
export const Notify = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 } as const;

/** Parses RCPT TO parameters; a reply when one is bad. */
export function parseRcptParams(params: string[]): { notify: number; orcpt: string } | SmtpReply {
  let notify = 0;
  let orcpt = "";
  for (const word of params) {
    const eq = word.indexOf("=");
    const name = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? "" : word.slice(eq + 1);
    if (name === "NOTIFY" && eq > 0) {
      if (notify) return r(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
      for (const k of value.toUpperCase().split(",")) {
        const bit = Notify[k as keyof typeof Notify];
        if (!bit) return r(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
        notify |= bit;
      }
      if ((notify & Notify.NEVER) && notify !== Notify.NEVER) {
        return r(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
      }
    } else if (name === "ORCPT" && eq > 0) {
      const semi = value.indexOf(";");
      const decoded = semi > 0 ? decodeXtext(value.slice(semi + 1)) : undefined;
      if (
        orcpt || decoded === undefined || decoded === "" ||
        !/^[A-Za-z0-9-]+$/.test(value.slice(0, semi))
      ) {
        return r(501, "5.5.4", "Error: Bad ORCPT parameter syntax");
      }
      orcpt = `${value.slice(0, semi)};${decoded}`;
    } else {
      return r(555, "5.5.4", `Unsupported option: ${word}`);
    }
  }
  return { notify, orcpt };
}
