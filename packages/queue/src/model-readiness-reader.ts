import type { Redis } from "ioredis";
import { WorkerModelReport } from "@inferline/contracts";
import { modelReadinessKey, modelReportKey } from "./names.ts";

/** The Redis commands the reader uses, and the connection's status (a Cluster connection has them too). */
export type ReadinessReaderRedis = Pick<Redis, "smembers" | "get" | "srem"> & { readonly status: string };

/**
 * Reads what live workers report about models (see ModelReadinessPublisher). One SMEMBERS and one
 * GET per reporting worker for each model: single-key commands, so on a Redis Cluster each goes to
 * its own key's node and needs no hash tag. A worker whose report expired is dropped from the model's set here.
 */
export class ModelReadinessReader {
  constructor(
    private readonly redis: ReadinessReaderRedis,
    private readonly prefix: string,
  ) {}

  /**
   * The live workers' reports of each model; a model no live worker reported maps to []. Fails at
   * once while the connection is not ready: ioredis would hold the commands in its offline queue.
   */
  async read(models: readonly string[]): Promise<Map<string, WorkerModelReport[]>> {
    if (this.redis.status !== "ready") throw new Error(`Redis connection is ${this.redis.status}`);
    const entries = await Promise.all(models.map(async (model) => [model, await this.readModel(model)] as const));
    return new Map(entries);
  }

  private async readModel(model: string): Promise<WorkerModelReport[]> {
    const workers = await this.redis.smembers(modelReadinessKey(this.prefix, model));
    const raw = await Promise.all(workers.map((worker) => this.redis.get(modelReportKey(this.prefix, model, worker))));
    const reports: WorkerModelReport[] = [];
    const gone: string[] = [];
    raw.forEach((text, i) => {
      if (text === null) return void gone.push(workers[i]!);
      const parsed = WorkerModelReport.safeParse(safeJson(text));
      // A report of another shape (another version of Inferline, or not ours) counts for nothing.
      if (parsed.success && parsed.data.model === model) reports.push(parsed.data);
    });
    // Expired reports: the workers died without withdrawing them. Best effort, and not awaited;
    // a worker renewing meanwhile adds itself back on its next beat.
    if (gone.length > 0) {
      this.redis.srem(modelReadinessKey(this.prefix, model), ...gone).catch(() => {});
    }
    return reports;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
