// The queue manager's parameters, read once from the configuration:
// active-queue limits, retry and lifetime times, and per-transport
// concurrency and recipient limits (TRANSPORT_destination_concurrency_limit
// and friends fall back to their default_ counterparts).

import { type Feedback, parseFeedback, type WindowSettings } from "./feedback.ts";
import { warn } from "../../lib/log.ts";

/** One transport's limits. */
export interface TransportSettings {
  window: WindowSettings;
  /** Recipients per delivery request; 0: no limit. */
  rcptLimit: number;
  /** Deliveries in progress at once over the transport (its agents). */
  processLimit: number;
  /** Preemption: transport_delivery_slot_cost (0: none), _slot_loan, _slot_discount, _minimum_delivery_slots. */
  slotCost: number;
  slotLoan: number;
  slotDiscount: number;
  minimumSlots: number;
}

/** Everything the scheduler reads from main.cf. */
export interface QmgrSettings {
  /** qmgr_message_active_limit. */
  activeLimit: number;
  /** qmgr_message_recipient_limit: recipients in memory over all active messages. */
  recipientLimit: number;
  minimalBackoff: number;
  maximalBackoff: number;
  maximalQueueLifetime: number;
  bounceQueueLifetime: number;
  queueRunDelay: number;
  /** defer_transports. */
  deferTransports: Set<string>;
  /** delay_logging_resolution_limit. */
  resolution: number;
  /** double_bounce_sender: local mail to it is discarded here. */
  doubleBounceSender: string;
  /** address_verify_pending_request_limit: verify probes in the active queue at once. */
  verifyPendingLimit: number;
  /** default_filter_nexthop and myhostname: the next hop of a content filter that names none. */
  defaultFilterNexthop: string;
  myhostname: string;
  /** disable_verp_bounces: one non-delivery notice for all recipients of a VERP message. */
  disableVerpBounces?: boolean;
  /** Per-transport settings (cached). */
  transport(name: string): TransportSettings;
}

/** The subset of Config the settings read. */
export interface ConfigLike {
  get(name: string): string;
  int(name: string): number;
  time(name: string): number;
  list(name: string): string[];
}

function feedback(config: ConfigLike, name: string): Feedback {
  const value = config.get(name);
  const f = parseFeedback(value);
  if (f) return f;
  warn(`${name}: bad value "${value}", using 1`);
  return () => 1;
}

/** Per-transport parameter, with the default_ parameter as fallback. */
function perTransport(config: ConfigLike, transport: string, suffix: string): string {
  return config.get(`${transport}_${suffix}`) || config.get(`default_${suffix}`);
}

/**
 * Reads the queue manager's settings. `processLimits` holds master.cf's
 * process limit by service name (0: unlimited), for the transports' agents.
 */
export function qmgrSettings(
  config: ConfigLike,
  processLimits: Map<string, number> = new Map(),
): QmgrSettings {
  const cache = new Map<string, TransportSettings>();
  const int = (t: string, s: string) => parseInt(perTransport(config, t, s), 10) || 0;
  return {
    activeLimit: Math.max(1, config.int("qmgr_message_active_limit")),
    recipientLimit: Math.max(1, config.int("qmgr_message_recipient_limit")),
    minimalBackoff: config.time("minimal_backoff_time"),
    maximalBackoff: config.time("maximal_backoff_time"),
    maximalQueueLifetime: config.time("maximal_queue_lifetime"),
    bounceQueueLifetime: config.time("bounce_queue_lifetime"),
    queueRunDelay: Math.max(1, config.time("queue_run_delay")),
    deferTransports: new Set(config.list("defer_transports")),
    resolution: config.int("delay_logging_resolution_limit"),
    doubleBounceSender: config.get("double_bounce_sender") || "double-bounce",
    verifyPendingLimit: config.int("address_verify_pending_request_limit"),
    defaultFilterNexthop: config.get("default_filter_nexthop"),
    myhostname: config.get("myhostname"),
    disableVerpBounces: /^(yes|true|on|1)$/i.test(config.get("disable_verp_bounces")),
    transport(name) {
      let s = cache.get(name);
      if (s) return s;
      const initial = Math.max(
        1,
        parseInt(
          config.get(`${name}_initial_destination_concurrency`) ||
            config.get("initial_destination_concurrency"),
          10,
        ) || 5,
      );
      s = {
        window: {
          initial,
          limit: int(name, "destination_concurrency_limit"),
          positive: feedback(
            config,
            config.get(`${name}_destination_concurrency_positive_feedback`)
              ? `${name}_destination_concurrency_positive_feedback`
              : "default_destination_concurrency_positive_feedback",
          ),
          negative: feedback(
            config,
            config.get(`${name}_destination_concurrency_negative_feedback`)
              ? `${name}_destination_concurrency_negative_feedback`
              : "default_destination_concurrency_negative_feedback",
          ),
          cohortLimit: int(name, "destination_concurrency_failed_cohort_limit"),
        },
        rcptLimit: int(name, "destination_recipient_limit"),
        processLimit: processLimit(config, processLimits, name),
        slotCost: int(name, "delivery_slot_cost"),
        slotLoan: int(name, "delivery_slot_loan"),
        slotDiscount: Math.min(100, Math.max(0, int(name, "delivery_slot_discount"))),
        minimumSlots: int(name, "minimum_delivery_slots"),
      };
      if (s.window.limit > 0 && s.window.initial > s.window.limit) {
        s.window.initial = s.window.limit;
      }
      cache.set(name, s);
      return s;
    },
  };
}

/** A transport's agents at once: master.cf's maxproc (0: unlimited), else default_process_limit. */
function processLimit(config: ConfigLike, limits: Map<string, number>, name: string): number {
  const limit = limits.get(name) ?? (parseInt(config.get("default_process_limit"), 10) || 100);
  return limit <= 0 ? Infinity : limit;
}
