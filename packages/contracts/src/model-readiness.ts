import { z } from "zod";

/**
 * What one worker process says about one model it was told to serve: for each version, whether
 * it loaded (and warmed up) or why not. Workers publish it to Redis as a heartbeat with a TTL (see
 * ModelReadinessPublisher); API processes read it to answer readiness and to refuse work no worker
 * can run. `code` is the failure's stable code (`warmup_failed`, `model_file_missing`,
 * `load_failed`…), never its message, which names files and hosts: the message is in the worker's log.
 */
export const WorkerModelReport = z.object({
  worker: z.string().min(1).max(256),
  model: z.string().min(1).max(128),
  versions: z
    .array(
      z.object({
        version: z.string().min(1).max(128),
        ready: z.boolean(),
        code: z.string().max(128).optional(),
      }),
    )
    .max(1000),
});
export type WorkerModelReport = z.infer<typeof WorkerModelReport>;

/**
 * A model version's readiness over every live worker: `ready` when at least one worker serves it,
 * `failed` when workers tried and none could (their failure codes in `codes`), `unknown` when no
 * live worker has reported it (none started yet, or none is told to serve it).
 */
export const VersionReadiness = z.object({
  state: z.enum(["ready", "failed", "unknown"]),
  readyWorkers: z.number().int().min(0),
  failedWorkers: z.number().int().min(0),
  codes: z.array(z.string()).optional(),
});
export type VersionReadiness = z.infer<typeof VersionReadiness>;

/** A model's readiness: `ready` when any version is, else `failed` when any version failed, else `unknown`; and each version's. */
export const ModelReadiness = z.object({
  state: VersionReadiness.shape.state,
  versions: z.record(z.string(), VersionReadiness),
});
export type ModelReadiness = z.infer<typeof ModelReadiness>;

/** Folds the live workers' reports of one model into its readiness, for the versions the manifest lists. */
export function summarizeReadiness(versions: readonly string[], reports: readonly WorkerModelReport[]): ModelReadiness {
  const byVersion: Record<string, VersionReadiness> = {};
  for (const version of versions) {
    let readyWorkers = 0;
    let failedWorkers = 0;
    const codes = new Set<string>();
    for (const report of reports) {
      const seen = report.versions.find((v) => v.version === version);
      if (!seen) continue;
      if (seen.ready) readyWorkers++;
      else {
        failedWorkers++;
        codes.add(seen.code ?? "load_failed");
      }
    }
    const state = readyWorkers > 0 ? "ready" : failedWorkers > 0 ? "failed" : "unknown";
    byVersion[version] = {
      state,
      readyWorkers,
      failedWorkers,
      ...(codes.size > 0 ? { codes: [...codes].sort() } : {}),
    };
  }
  const states = Object.values(byVersion).map((v) => v.state);
  const state = states.includes("ready") ? "ready" : states.includes("failed") ? "failed" : "unknown";
  return { state, versions: byVersion };
}
