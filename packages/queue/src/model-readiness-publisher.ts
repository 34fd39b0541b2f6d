import type { Redis } from "ioredis";
import type { WorkerModelReport } from "@inferline/contracts";
import { modelReadinessKey, modelReportKey } from "./names.ts";

/** The Redis commands the publisher uses (a Cluster connection has them too). */
export type ReadinessPublisherRedis = Pick<Redis, "set" | "sadd" | "pexpire" | "srem" | "del">;

export interface ModelReadinessPublisherOptions {
  /** How often the reports are renewed, ms. Each lives three times as long, so one lost beat changes nothing. */
  intervalMs: number;
  /** A beat that failed (Redis down): the next one tries again. */
  onError?: (err: Error) => void;
}

/** Longest wait for the reports to be withdrawn at shutdown; past it they expire by themselves. */
const WITHDRAW_TIMEOUT_MS = 1000;

/**
 * A worker's heartbeat of model readiness: every `intervalMs` it writes one key per model it was
 * told to serve (its report, with a TTL of three intervals) and adds itself to the model's set of
 * reporting workers. A worker that dies stops renewing, and its reports expire: what API processes
 * read is what live workers say. Per-worker keys with Redis's own expiry, rather than timestamps in
 * one hash, so that clocks of different machines never matter.
 */
export class ModelReadinessPublisher {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly redis: ReadinessPublisherRedis,
    private readonly prefix: string,
    readonly reports: readonly WorkerModelReport[],
    private readonly options: ModelReadinessPublisherOptions,
  ) {}

  get ttlMs(): number {
    return this.options.intervalMs * 3;
  }

  /** Publishes once (awaited: when this resolves, API processes can see this worker's models), then every interval. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
    this.timer.unref();
  }

  /** One renewal; skipped while the previous one is still in flight (a slow Redis). */
  beat(): Promise<void> {
    this.inFlight ??= this.write().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async write(): Promise<void> {
    try {
      await Promise.all(
        this.reports.flatMap((report) => {
          const set = modelReadinessKey(this.prefix, report.model);
          return [
            this.redis.set(
              modelReportKey(this.prefix, report.model, report.worker),
              JSON.stringify(report),
              "PX",
              this.ttlMs,
            ),
            this.redis.sadd(set, report.worker),
            // The set outlives its last member's report by no more than one TTL.
            this.redis.pexpire(set, this.ttlMs),
          ];
        }),
      );
    } catch (err) {
      this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Stops renewing and withdraws the reports, so the API stops counting this worker at once rather than after the TTL. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    const withdraw = Promise.all(
      this.reports.flatMap((report) => [
        this.redis.del(modelReportKey(this.prefix, report.model, report.worker)),
        this.redis.srem(modelReadinessKey(this.prefix, report.model), report.worker),
      ]),
    ).then(
      () => undefined,
      () => undefined, // Redis is down: the reports expire by themselves.
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([withdraw, new Promise<void>((resolve) => (timer = setTimeout(resolve, WITHDRAW_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }
}
