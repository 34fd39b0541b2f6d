import { Router } from "express";
import type { Redis } from "ioredis";
import type { ModelRepository } from "@inferline/contracts";
import type { Database } from "@inferline/db";

async function check(fn: () => Promise<unknown>): Promise<"ok" | string> {
  try {
    await Promise.race([fn(), new Promise((_, reject) => setTimeout(() => reject(new Error("timed out after 2 s")), 2000).unref())]);
    return "ok";
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

type HealthDeps = { db: Database; redis: Redis; models: ModelRepository };

/** Each dependency's state: "ok" or "error: …". Both /readyz and /v2/health/ready use it. */
export async function readiness(deps: HealthDeps): Promise<{ ready: boolean; checks: Record<"postgres" | "redis" | "models", string> }> {
  const [postgres, redis] = await Promise.all([check(() => deps.db.pool.query("select 1")), check(() => deps.redis.ping())]);
  const models = deps.models.names().length > 0 ? "ok" : "error: no models in the repository";
  return { ready: postgres === "ok" && redis === "ok" && models === "ok", checks: { postgres, redis, models } };
}

export function healthRouter(deps: HealthDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const { ready, checks } = await readiness(deps);
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "not ready", checks });
  });
  return router;
}
