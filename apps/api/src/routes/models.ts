import { Router } from "express";
import type { ModelManifest, ModelRepository } from "@inferline/contracts";

/** The model as clients see it: its contract, not where its file lives. */
export function modelView(m: ModelManifest) {
  return {
    name: m.name,
    description: m.description,
    versions: m.versions.map((v) => v.version),
    defaultVersion: m.defaultVersion ?? m.versions[m.versions.length - 1]!.version,
    inputs: m.inputs,
    outputs: m.outputs,
    batching: m.batching,
    maxRowsPerJob: m.maxRowsPerJob,
  };
}

export function modelsRouter(models: ModelRepository): Router {
  const router = Router();
  router.get("/", (_req, res) => {
    res.json({ models: models.names().map((n) => modelView(models.manifest(n))) });
  });
  router.get("/:name", (req, res) => {
    res.json(modelView(models.manifest(req.params.name)));
  });
  return router;
}
