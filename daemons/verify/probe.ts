// Probe messages of verify(8): a message with no content to one address,
// from address_verify_sender, posted to the cleanup service with the trace
// flag DEL_REQ_FLAG_MTA_VRFY, so the queue manager routes it and the
// delivery agents only say whether they would deliver it.

import { CleanupClient, CleanupRequestFlag } from "../../lib/cleanup_client.ts";
import { DeliverFlag } from "../../lib/deliver/request.ts";
import { longIdAlphabet } from "../../lib/queue/id.ts";
import { clockMicros } from "../../lib/queue/file.ts";
import { RecordType } from "../../lib/queue/record.ts";
import { fatal } from "../../lib/log.ts";
import { rfc822Date } from "../../lib/dsn/report.ts";

/** What probeSender() reads. */
export interface ProbeConfig {
  get(name: string): string;
  time(name: string): number;
}

/** Writes n in base 31 with the queue-id alphabet's first 31 characters (Postfix's safe_ultostr). */
function base31(n: number): string {
  let out = "";
  do {
    out = longIdAlphabet[n % 31] + out;
    n = Math.floor(n / 31);
  } while (n > 0);
  return out;
}

/**
 * The probe sender: address_verify_sender ("" or "<>": the null sender);
 * with address_verify_sender_ttl the current time slot, in base 31, is
 * appended to the local part, so the address changes every ttl seconds
 * (cleanup completes a bare local part with @$myorigin).
 */
export function probeSender(config: ProbeConfig, now = Date.now() / 1000): string {
  const sender = config.get("address_verify_sender");
  if (sender === "" || sender === "<>") return "";
  const at = sender.indexOf("@");
  if (at === 0) fatal(`parameter address_verify_sender: value "${sender}" must not start with '@'`);
  if (at === sender.length - 1) {
    fatal(`parameter address_verify_sender: value "${sender}" must not end with '@'`);
  }
  const ttl = config.time("address_verify_sender_ttl");
  if (ttl <= 0) return sender;
  const slot = base31(Math.floor(now / ttl));
  return at < 0 ? sender + slot : sender.slice(0, at) + slot + sender.slice(at);
}

/**
 * Posts one probe through cleanup at `socket`; returns its queue id. Its
 * only content is the Received header Postfix's internal mail starts with.
 */
export async function postProbe(
  socket: string,
  sender: string,
  address: string,
  host: { myhostname: string; mailName: string },
): Promise<string> {
  const client = await CleanupClient.open(socket, CleanupRequestFlag.MAP_OK);
  try {
    const { seconds, usec } = clockMicros();
    await client.record(RecordType.TIME, `${seconds} ${usec}`);
    await client.record(RecordType.ATTR, "rewrite_context=local");
    await client.record(RecordType.ATTR, `trace_flags=${DeliverFlag.MTA_VRFY}`);
    await client.record(RecordType.FROM, sender);
    await client.record(RecordType.RCPT, address);
    // Probes need no other content: they are never delivered, deferred or bounced.
    await client.record(RecordType.MESG, "");
    await client.record(RecordType.NORM, `Received: by ${host.myhostname} (${host.mailName})`);
    await client.record(RecordType.NORM, `\tid ${client.queueId}; ${rfc822Date(new Date())}`);
    await client.record(RecordType.XTRA, "");
    await client.record(RecordType.END, "");
    const reply = await client.finish();
    if (reply.status !== 0) throw new Error(`cleanup: ${reply.reason || `status ${reply.status}`}`);
    return client.queueId;
  } finally {
    client.close();
  }
}
