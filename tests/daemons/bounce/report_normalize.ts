// Comparing a notice with the reference's: what varies from run to run is
// taken out (the Received and Message-Id headers cleanup and pickup add,
// dates, queue ids, the boundary) and recipients are put in a fixed order.

/**
 * A report with what varies from run to run taken out: the Received and
 * Message-Id headers cleanup and pickup add, dates, queue ids, the
 * boundary, and the order of the recipients (the order agents finished in).
 */
export function normalizeReport(text: string): string {
  const lines = text.replace(/\n$/, "").split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith("Received: ")) {
      while (lines[i + 1]?.startsWith("\t")) i++;
      continue;
    }
    if (l.startsWith("Message-Id: ")) continue;
    out.push(
      l.replace(/\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\)/g, "DATE")
        .replace(/[0-9A-Za-z]+\.\d+\/mx\.example\.com/g, "BOUNDARY")
        .replace(/^X-Postfix-Queue-ID: .*/, "X-Postfix-Queue-ID: ID"),
    );
  }
  // Recipients in a fixed order: the "<addr>: reason" lines and the per-recipient status blocks.
  const text2 = out.join("\n");
  return text2.replace(/((?:^<[^\n]*\n\n)+)/m, (m) => {
    const items = m.split("\n\n").filter((s) => s).sort();
    return items.map((s) => s + "\n\n").join("");
  }).replace(/((?:^Final-Recipient: [^]*?\n\n)+)(?=--)/m, (m) => {
    const blocks = m.split("\n\n").filter((s) => s).sort();
    return blocks.map((s) => s + "\n\n").join("");
  });
}
