// bounce: the bounce, defer and trace services, as Postfix's bounce(8).
//
// Keeps the per-message logs of undeliverable (bounce/), delayed (defer/)
// and traced (trace/) recipients, and turns them into RFC 3464 delivery
// status notifications (non-delivery, delay, success) queued through the
// cleanup service, from the built-in templates or bounce_template_file
// (bounce(5)). The request protocol is in lib/bounce_client.ts.

import type * as net from "node:net";
import type { ProgramContext } from "../../lib/program.ts";
import { type DaemonContext, multiServer } from "../../lib/daemon/server.ts";
import { AttrReader, encodeAttrs } from "../../lib/ipc/attr.ts";
import { CleanupClient, CleanupRequestFlag } from "../../lib/cleanup_client.ts";
import { clockMicros } from "../../lib/queue/file.ts";
import { layoutFromConfig } from "../../lib/queue/layout.ts";
import { RecordType } from "../../lib/queue/record.ts";
import { fatal, warn } from "../../lib/log.ts";
import { defaultVerpDelimitersError } from "../../lib/verp.ts";
import type { ReportTemplate } from "../../lib/dsn/report.ts";
import { type BounceEnv, handleBounceRequest } from "./notify.ts";
import {
  defaultTemplates,
  expandTemplate,
  parseTemplateFile,
  TemplateError,
  type TemplateName,
} from "./templates.ts";

/** Queues one notice through cleanup; returns the new queue id. */
export async function submitThroughCleanup(
  socket: string,
  sender: string,
  recipient: string,
  lines: string[],
): Promise<string> {
  const client = await CleanupClient.open(socket, CleanupRequestFlag.MAP_OK);
  try {
    const { seconds, usec } = clockMicros();
    await client.record(RecordType.TIME, `${seconds} ${usec}`);
    await client.record(RecordType.ATTR, "rewrite_context=local");
    await client.record(RecordType.FROM, sender);
    await client.record(RecordType.RCPT, recipient);
    await client.record(RecordType.MESG, "");
    for (const line of lines) await client.record(RecordType.NORM, line);
    await client.record(RecordType.XTRA, "");
    await client.record(RecordType.END, "");
    const reply = await client.finish();
    if (reply.status !== 0) throw new Error(`cleanup: ${reply.reason || `status ${reply.status}`}`);
    return client.queueId;
  } finally {
    client.close();
  }
}

/** The service environment from the configuration. */
export function bounceEnv(d: DaemonContext): BounceEnv {
  const c = d.config;
  const file = c.get("bounce_template_file");
  let raw = defaultTemplates;
  if (file) {
    try {
      raw = parseTemplateFile(Deno.readTextFileSync(file), file);
    } catch (err) {
      if (err instanceof TemplateError) fatal(err.message);
      fatal(`open ${file}: ${(err as Error).message}`);
    }
  }
  const templates = {} as Record<TemplateName, ReportTemplate>;
  for (const name of Object.keys(raw) as TemplateName[]) {
    templates[name] = expandTemplate(raw[name], c);
  }
  const queue = c.get("queue_directory");
  const cleanup = `${queue}/public/${c.get("cleanup_service_name") || "cleanup"}`;
  return {
    layout: layoutFromConfig(c),
    myhostname: c.get("myhostname"),
    notifyClasses: new Set(c.list("notify_classes").map((s) => s.toLowerCase())),
    bounceNoticeRecipient: c.get("bounce_notice_recipient"),
    twoBounceNoticeRecipient: c.get("2bounce_notice_recipient"),
    delayNoticeRecipient: c.get("delay_notice_recipient"),
    doubleBounceSender: c.get("double_bounce_sender"),
    bounceSizeLimit: c.size("bounce_size_limit"),
    maximalQueueLifetime: c.time("maximal_queue_lifetime"),
    templates,
    submit: (sender, rcpt, lines) => submitThroughCleanup(cleanup, sender, rcpt, lines),
  };
}

/** Reads one request list from the connection; null when it ends first. */
function readList(conn: net.Socket): Promise<Map<string, string> | null> {
  return new Promise((resolve) => {
    const reader = new AttrReader();
    const onData = (chunk: Uint8Array) => {
      const lists = reader.push(chunk);
      if (lists.length) finish(lists[0]);
    };
    const finish = (v: Map<string, string> | null) => {
      conn.off("data", onData);
      conn.off("end", onEnd);
      conn.off("error", onEnd);
      resolve(v);
    };
    const onEnd = () => finish(null);
    conn.on("data", onData);
    conn.on("end", onEnd);
    conn.on("error", onEnd);
  });
}

/** The log a service name keeps by default (bounce, defer or trace). */
function serviceLog(d: DaemonContext, name: string): string {
  for (const log of ["defer", "trace"]) {
    if (d.service === log || d.service === d.config.get(`${log}_service_name`)) return log;
  }
  return name === "defer" || name === "trace" ? name : "bounce";
}

/** Runs the bounce (defer, trace) service. */
export function main(args: string[], ctx: ProgramContext): Promise<number> {
  let env: BounceEnv;
  return multiServer(args, ctx, async (conn, d) => {
    const req = await readList(conn);
    if (!req) return;
    let status: number;
    try {
      status = await handleBounceRequest(env, req, serviceLog(d, ctx.name));
    } catch (err) {
      warn(`${req.get("queue_id") ?? "?"}: ${(err as Error).message}`);
      status = -1;
    }
    await new Promise<void>((resolve) => conn.write(encodeAttrs({ status }), () => resolve()));
  }, {
    init(d) {
      // As every Postfix program, refuse to run with bad default VERP delimiters.
      const verpError = defaultVerpDelimitersError(d.config);
      if (verpError) fatal(verpError);
      env = bounceEnv(d);
    },
  });
}
