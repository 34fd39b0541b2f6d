import { Router } from "express";
import type { Cluster, Redis } from "ioredis";
import type { DependencyState, Healthz, ModelReadiness, NotReady, Readyz } from "@inferline/contracts";
import type { ModelRepository } from "@inferline/runtime";
import { postgresFailure, type Database } from "@inferline/db";
import { redisFailure } from "@inferline/queue";
import { DEPENDENCY_RETRY_AFTER_SECONDS } from "../problem.ts";
import type { ModelAvailability } from "../services/model-availability.ts";

/** Each check gets this long, so that /readyz itself answers within 2 s when a dependency hangs. */
const CHECK_TIMEOUT_MS = 1500;

class CheckTimeout extends Error {}

/** Runs one probe; a failure is named by `classify` (never reported as the raw error, which can carry hosts and internals). */
async function check(
  probe: () => Promise<unknown>,
  classify: (err: unknown) => DependencyState | undefined,
): Promise<DependencyState> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new CheckTimeout()), CHECK_TIMEOUT_MS))),
    ]);
    return "ok";
  } catch (err) {
    return err instanceof CheckTimeout ? "timeout" : (classify(err) ?? "error");
  } finally {
    clearTimeout(timer);
  }
}

type HealthDeps = {
  db: Pick<Database, "ping">;
  redis: Redis | Cluster;
  models: ModelRepository;
  availability?: Pick<ModelAvailability, "all">;
};

/**
 * `models`: each model's readiness as live workers report it (ready, failed, unknown; per version,
 * with worker counts and failure codes), when Redis answered. Informational: a model no worker
 * can serve does not make the API unready (it still serves every other model, and answers 503
 * `model_unavailable` for that one).
 */
export type Readiness = {
  ready: boolean;
  checks: { postgres: DependencyState; redis: DependencyState; models: "ok" | "empty" };
  models?: Record<string, ModelReadiness>;
};

/** Each dependency's state as a word. Both /readyz and /v2/health/ready use it. */
export async function readiness(deps: HealthDeps): Promise<Readiness> {
  const [postgres, redis] = await Promise.all([
    check(() => deps.db.ping(), postgresFailure),
    // While ioredis is reconnecting, a PING would only wait in its offline queue: say so at once.
    deps.redis.status === "ready"
      ? check(() => deps.redis.ping(), redisFailure)
      : Promise.resolve<DependencyState>("unreachable"),
  ]);
  const models = deps.models.names().length > 0 ? "ok" : "empty";
  const readiness: Readiness = {
    ready: postgres === "ok" && redis === "ok" && models === "ok",
    checks: { postgres, redis, models },
  };
  if (redis === "ok" && deps.availability) {
    const availability = deps.availability;
    let read: Map<string, ModelReadiness> | undefined;
    const state = await check(async () => (read = await availability.all({ fresh: true })), redisFailure);
    if (state === "ok" && read) readiness.models = Object.fromEntries(read);
  }
  return readiness;
}

export function healthRouter(deps: HealthDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" } satisfies Healthz);
  });
  router.get("/readyz", async (_req, res) => {
    const { ready, checks, models } = await readiness(deps);
    if (ready) return void res.json({ status: "ready", checks, models } satisfies Readyz);
    // Not ready: a problem document like every other 503, with the states as an extension member.
    const down = Object.entries(checks).filter(([, state]) => state !== "ok");
    res.setHeader("Retry-After", String(DEPENDENCY_RETRY_AFTER_SECONDS));
    const body = {
      type: "https://inferline.dev/problems/not-ready",
      title: "Service Unavailable",
      status: 503,
      detail: `not ready: ${down.map(([name, state]) => `${name} ${state}`).join(", ")}`,
      code: "not_ready",
      checks,
      models,
    } satisfies NotReady;
    res.status(503).type("application/problem+json").send(JSON.stringify(body));
  });
  return router;
}
