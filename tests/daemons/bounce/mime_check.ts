// Parses a notice with python3's email package (an independent MIME
// parser) and returns its structure: top-level headers, part types, and the
// delivery-status blocks as header maps.

/** What the parser saw. */
export interface ParsedReport {
  contentType: string;
  reportType: string;
  subject: string;
  from: string;
  to: string;
  defects: string[];
  parts: string[];
  /** The per-message block, then one per recipient. */
  status: Record<string, string>[];
  returned: string;
}

const script = `
import sys, json, email
from email import policy
msg = email.message_from_binary_file(sys.stdin.buffer, policy=policy.compat32)
out = {"contentType": msg.get_content_type(), "reportType": msg.get_param("report-type") or "",
       "subject": msg["Subject"] or "", "from": msg["From"] or "", "to": msg["To"] or "",
       "defects": [type(d).__name__ for d in msg.defects], "parts": [], "status": [], "returned": ""}
for part in msg.get_payload():
    out["parts"].append(part.get_content_type())
    out["defects"] += [type(d).__name__ for d in part.defects]
    if part.get_content_type() == "message/delivery-status":
        for block in part.get_payload():
            out["status"].append({k: str(v) for k, v in block.items()})
    elif part.get_content_type() == "message/rfc822":
        out["returned"] = part.get_payload()[0].as_string()
    elif part.get_content_type() == "text/rfc822-headers":
        out["returned"] = part.get_payload()
print(json.dumps(out))
`;

/** Parses `lines` (joined with CRLF-less newlines, as a queue file holds them). */
export async function parseReport(lines: string[]): Promise<ParsedReport> {
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(lines.join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
