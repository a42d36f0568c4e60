// The requests of proxymap(8): open, lookup, update, delete and sequence on
// tables approved by proxy_read_maps (the proxymap service) or
// proxy_write_maps (the proxywrite service), each table opened once per
// name and flags and shared by every client of the process. A table whose
// file changes (postmap rebuilt it) is reopened at the next request.

import { type Config, splitList } from "../../lib/config/mod.ts";
import { debug, info, warn } from "../../lib/log.ts";
import { type Dict, DictError, openMap, splitMapSpec } from "../../maps/mod.ts";
import {
  decodeDictFlags,
  DICT_FLAG_FIXED,
  DICT_FLAG_PATTERN,
  ProxyStatus,
  SEQ_FIRST,
  SEQ_NEXT,
} from "../../maps/proxy.ts";
import { TableWatch } from "../trivial_rewrite/watch.ts";

/** Table types whose keys are patterns (an open request reports DICT_FLAG_PATTERN). */
const patternTypes = new Set(["regexp", "pcre", "cidr"]);

/** One reply: the status and what the request asked for. */
export type Reply = Record<string, string | number>;

/** What a proxymap process serves. */
export class ProxyService {
  /** Approved `type:name` tables (the proxy: entries of the parameter). */
  private readonly approved: Set<string>;
  private readonly parameter: string;
  private tables = new Map<string, Dict>();
  private watch: TableWatch;

  constructor(private readonly config: Config, readonly write: boolean) {
    this.parameter = write ? "proxy_write_maps" : "proxy_read_maps";
    this.approved = new Set();
    this.allow(config.list(this.parameter), 0);
    this.watch = new TableWatch(config.configDir);
  }

  /**
   * Approves the proxy: entries of a list, looking inside unionmap:{...} and
   * pipemap:{...} too, whose member tables a client may reach through proxy.
   */
  private allow(items: string[], depth: number): void {
    for (const item of items) {
      const composite = /^(unionmap|pipemap):\{(.*)\}$/s.exec(item);
      if (composite && depth < 10) this.allow(splitList(composite[2]), depth + 1);
      if (!item.startsWith("proxy:")) continue;
      const table = item.slice("proxy:".length);
      debug(`allowlisting ${table} from ${this.parameter}`);
      this.approved.add(table);
    }
  }

  /** The shared table `name` opened with `bits`, or the status that refuses it. */
  private find(name: string, bits: number): Dict | number {
    if (!this.approved.has(name)) {
      warn(`request for unapproved table: "${name}"`);
      warn(
        `to approve this table for ${this.write ? "read-write" : "read-only"} access, ` +
          `list proxy:${name} in main.cf:${this.parameter}`,
      );
      return ProxyStatus.deny;
    }
    const key = `${name}\0${bits}`;
    let table = this.tables.get(key);
    if (table) return table;
    try {
      splitMapSpec(name);
      table = openMap(name, {
        flags: decodeDictFlags(bits),
        write: this.write,
        cwd: this.config.configDir,
        config: this.config,
      });
    } catch (err) {
      if (!(err instanceof DictError)) throw err;
      warn(`open ${name}: ${err.message}`);
      return err.kind === "retry" ? ProxyStatus.retry : ProxyStatus.config;
    }
    this.tables.set(key, this.write ? table : this.watch.add(name, table));
    return table;
  }

  /**
   * Answers one request. Every reply carries the attributes its request
   * type defines (open: flags; lookup: value; sequence: key and value),
   * empty on failure, as Postfix's clients read them all.
   */
  async handle(request: Map<string, string>, sequences: Map<string, SeqState>): Promise<Reply> {
    let reply: Reply;
    try {
      reply = await this.answer(request, sequences);
    } catch (err) {
      // A table that fails in an unforeseen way costs its client a retry, not the service.
      warn(`${request.get("table") ?? "(no table)"}: ${(err as Error).message}`);
      reply = { status: ProxyStatus.retry };
    }
    const fill: Record<string, Reply> = {
      open: { flags: 0 },
      lookup: { value: "" },
      sequence: { key: "", value: "" },
    };
    // Postfix's clients read the attributes in order: status first.
    return { status: reply.status, ...fill[request.get("request") ?? ""], ...reply };
  }

  private async answer(
    request: Map<string, string>,
    sequences: Map<string, SeqState>,
  ): Promise<Reply> {
    this.reopenChanged();
    const what = request.get("request") ?? "";
    const name = request.get("table");
    const flags = Number(request.get("flags") ?? "");
    if (!["open", "lookup", "update", "delete", "sequence"].includes(what)) {
      warn(`unrecognized request: "${what}", ignored`);
      return { status: ProxyStatus.bad };
    }
    if (name === undefined || !Number.isInteger(flags)) return { status: ProxyStatus.bad };
    if ((what === "update" || what === "delete") && !this.write) {
      warn(`refusing ${name} ${what} request on non-${this.proxywriteName()} service`);
      return { status: ProxyStatus.deny };
    }
    const table = this.find(name, flags);
    if (typeof table === "number") return { status: table };
    try {
      return await this.run(what, table, request, sequences);
    } catch (err) {
      if (!(err instanceof DictError)) throw err;
      warn(`${name}: ${what}: ${err.message}`);
      return { status: err.kind === "retry" ? ProxyStatus.retry : ProxyStatus.config };
    } finally {
      // A writable table commits when it is closed: proxywrite keeps none
      // open between requests, so every update is on disk when answered and
      // other writers (postmap -i) are not locked out.
      if (this.write && what !== "sequence") await this.release(name, flags);
    }
  }

  private async release(name: string, bits: number): Promise<void> {
    const key = `${name}\0${bits}`;
    const table = this.tables.get(key);
    this.tables.delete(key);
    await table?.close();
  }

  private proxywriteName(): string {
    return this.config.get("proxywrite_service_name") || "proxywrite";
  }

  private async run(
    what: string,
    table: Dict,
    request: Map<string, string>,
    sequences: Map<string, SeqState>,
  ): Promise<Reply> {
    const key = request.get("key");
    switch (what) {
      case "open": {
        const kind = patternTypes.has(table.type) ? DICT_FLAG_PATTERN : DICT_FLAG_FIXED;
        return { status: ProxyStatus.ok, flags: kind };
      }
      case "lookup": {
        if (key === undefined) return { status: ProxyStatus.bad };
        const value = await table.lookup(key);
        return value === undefined
          ? { status: ProxyStatus.noKey, value: "" }
          : { status: ProxyStatus.ok, value };
      }
      case "update": {
        const value = request.get("value");
        if (key === undefined || value === undefined) return { status: ProxyStatus.bad };
        const result = await table.update(key, value);
        table.flush?.();
        return { status: result === "duplicate" ? ProxyStatus.noKey : ProxyStatus.ok };
      }
      case "delete": {
        if (key === undefined) return { status: ProxyStatus.bad };
        const gone = await table.delete(key);
        table.flush?.();
        return { status: gone ? ProxyStatus.ok : ProxyStatus.noKey };
      }
      default:
        return await this.sequence(table, request, sequences);
    }
  }

  /** sequence: the first or next entry of a client's walk through the table. */
  private async sequence(
    table: Dict,
    request: Map<string, string>,
    sequences: Map<string, SeqState>,
  ): Promise<Reply> {
    const fn = Number(request.get("function"));
    const id = `${table.type}:${table.name}`;
    let state = sequences.get(id);
    if (fn === SEQ_FIRST) {
      state = { iterator: table.sequence()[Symbol.asyncIterator]() };
      sequences.set(id, state);
    } else if (fn !== SEQ_NEXT || !state) {
      return { status: ProxyStatus.bad };
    }
    const next = await state.iterator.next();
    if (next.done) {
      sequences.delete(id);
      return { status: ProxyStatus.noKey, key: "", value: "" };
    }
    return { status: ProxyStatus.ok, key: next.value[0], value: next.value[1] };
  }

  /** Drops the tables whose file changed, so that the next request opens the new one. */
  private reopenChanged(): void {
    const changed = this.watch.changed();
    if (!changed) return;
    info(`table ${changed} has changed -- reopening`);
    const old = this.watch;
    this.tables = new Map();
    this.watch = new TableWatch(this.config.configDir);
    old.close().catch(() => {});
  }

  /** Closes every table (the process is exiting). */
  async close(): Promise<void> {
    await this.watch.close();
    this.tables.clear();
  }
}

/** A client's walk through one table. */
export interface SeqState {
  iterator: AsyncIterator<[string, string]>;
}
