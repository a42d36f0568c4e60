// Client connection, message and recipient limits through anvil(8):
// smtpd_client_connection_count_limit, smtpd_client_connection_rate_limit,
// smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit, with
// smtpd_client_event_limit_exceptions exempt. Without any limit set (or
// without an anvil service) nothing is asked.

import { AnvilClient } from "../../lib/anvil_client.ts";
import { warn } from "../../lib/log.ts";
import { type HostList, hostList } from "./match.ts";
import type { Session } from "./session.ts";
import type { SmtpdSettings } from "./settings.ts";

/** The limit checks a session makes. */
export class Limits {
  private anvil?: AnvilClient;
  private exceptions: HostList;

  constructor(private readonly st: SmtpdSettings, private readonly service: string) {
    const any = st.smtpdClientConnectionCountLimit > 0 || st.smtpdClientConnectionRateLimit > 0 ||
      st.smtpdClientMessageRateLimit > 0 || st.smtpdClientRecipientRateLimit > 0;
    if (any) this.anvil = new AnvilClient(st.anvilSocket);
    this.exceptions = hostList(st.smtpdClientEventLimitExceptions);
  }

  private ident(s: Session): string {
    return `${this.service}:${s.clientAddr}`;
  }

  private async exempt(s: Session): Promise<boolean> {
    return !this.anvil || await this.exceptions.matches(s.clientName, s.clientAddr);
  }

  /** At connect: false (with the 421 queued) when the client is over a connection limit. */
  async connect(s: Session): Promise<boolean> {
    if (await this.exempt(s)) return true;
    s.anvilRegistered = true;
    let r;
    try {
      r = await this.anvil!.connectEvent(this.ident(s));
    } catch (err) {
      warn(`connect to ${this.st.anvilSocket}: ${(err as Error).message}`);
      s.anvilRegistered = false;
      return true;
    }
    const host = this.st.myhostname;
    const countLimit = this.st.smtpdClientConnectionCountLimit;
    const rateLimit = this.st.smtpdClientConnectionRateLimit;
    if (countLimit > 0 && r.count > countLimit) {
      warn(
        `Connection concurrency limit exceeded: ${r.count} from ${s.client} for service ${this.service}`,
      );
      s.reply({
        code: 421,
        dsn: "4.7.0",
        text: `${host} Error: too many connections from ${s.clientAddr}`,
      });
      return false;
    }
    if (rateLimit > 0 && r.rate > rateLimit) {
      warn(
        `Connection rate limit exceeded: ${r.rate} from ${s.client} for service ${this.service}`,
      );
      s.reply({
        code: 421,
        dsn: "4.7.0",
        text: `${host} Error: too many connections from ${s.clientAddr}`,
      });
      return false;
    }
    return true;
  }

  /** At the end of the session. */
  async disconnect(s: Session): Promise<void> {
    if (!s.anvilRegistered) return;
    await this.anvil!.disconnectEvent(this.ident(s)).catch(() => {});
  }

  /** At MAIL: true (with the 421 queued) when the message rate is exceeded. */
  async messageRateExceeded(s: Session): Promise<boolean> {
    const limit = this.st.smtpdClientMessageRateLimit;
    if (limit <= 0 || await this.exempt(s)) return false;
    const r = await this.anvil!.messageEvent(this.ident(s)).catch(() => undefined);
    if (!r || r.rate <= limit) return false;
    warn(
      `Message delivery request rate limit exceeded: ${r.rate} from ${s.client} for service ${this.service}`,
    );
    s.reply({
      code: 421,
      dsn: "4.7.0",
      text: `${this.st.myhostname} Error: too much mail from ${s.clientAddr}`,
    });
    return true;
  }

  /** At RCPT: true (with the 421 queued) when the recipient rate is exceeded. */
  async recipientRateExceeded(s: Session): Promise<boolean> {
    const limit = this.st.smtpdClientRecipientRateLimit;
    if (limit <= 0 || await this.exempt(s)) return false;
    const r = await this.anvil!.recipientEvent(this.ident(s)).catch(() => undefined);
    if (!r || r.rate <= limit) return false;
    warn(
      `Recipient address rate limit exceeded: ${r.rate} from ${s.client} for service ${this.service}`,
    );
    s.reply({
      code: 421,
      dsn: "4.7.0",
      text: `${this.st.myhostname} Error: too many recipients from ${s.clientAddr}`,
    });
    return true;
  }

  /** After a message (nothing to report to anvil: rates count at MAIL and RCPT). */
  messageDone(_s: Session): Promise<void> {
    return Promise.resolve();
  }

  /** Closes the anvil connection. */
  close(): void {
    this.anvil?.close();
  }
}
