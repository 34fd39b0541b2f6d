import { Router } from "express";
import { modelView, type ModelList } from "@inferline/contracts";
import { type ModelRepository } from "@inferline/runtime";
import type { QueueStatusService } from "../services/queue-status.ts";

export function modelsRouter(models: ModelRepository, queues: QueueStatusService): Router {
  const router = Router();
  router.get("/", (_req, res) => {
    res.json({ models: models.names().map((n) => modelView(models.manifest(n))) } satisfies ModelList);
  });
  router.get("/:name", (req, res) => {
    res.json(modelView(models.manifest(req.params.name)));
  });
  // The caller's queued and running work on the model, the model's depth and its oldest wait.
  router.get("/:name/queue", async (req, res) => {
    const { name } = models.manifest(req.params.name);
    res.json(await queues.status(name, req.tenant!.id));
  });
  return router;
}
