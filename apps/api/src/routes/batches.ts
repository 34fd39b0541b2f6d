import express, { Router } from "express";
import bytes from "bytes";
import { BatchHeader, BatchSubmission } from "@inferline/contracts";
import type { BatchService } from "../services/batch-service.ts";
import { sendProblem, zodFaults } from "../problem.ts";
import { longPollHandler } from "./long-poll-handler.ts";
import { ndjsonLines } from "./ndjson.ts";

const isNdjson = (type: string | undefined) => /^application\/(x-)?(nd|jsonl|json-seq|x-ndjson)/i.test(type ?? "") || /ndjson|jsonl/i.test(type ?? "");

export function batchesRouter(batches: BatchService, limit: string): Router {
  const router = Router();
  const limitBytes = bytes.parse(limit) ?? 200 * 1024 * 1024;
  const json = express.json({ limit, strict: true, type: (req) => !isNdjson(req.headers["content-type"]) });

  router.post("/", json, async (req, res) => {
    let view;
    if (isNdjson(req.headers["content-type"])) {
      // NDJSON: the batch's settings come from the query string, one item per line of the body.
      const header = BatchHeader.safeParse({ ...req.query, webhook: req.query.webhookUrl ? { url: req.query.webhookUrl } : undefined, webhookUrl: undefined });
      if (!header.success) return sendProblem(res, 422, "validation_failed", "invalid query parameters", zodFaults(header.error, "/query"));
      view = await batches.create(req.tenant!.id, header.data, ndjsonLines(req, limitBytes));
    } else {
      const body = BatchSubmission.safeParse(req.body);
      if (!body.success) return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(body.error));
      view = await batches.create(req.tenant!.id, body.data, body.data.items);
    }
    res.status(202).location(`/v1/batches/${view.id}`).json(view);
  });

  router.get("/:id", longPollHandler((tenantId, id, seconds, signal) => batches.wait(tenantId, id, seconds, signal)));

  router.get("/:id/results", async (req, res) => {
    const pages = await batches.results(req.tenant!.id, req.params.id);
    res.status(200).type("application/x-ndjson");
    for await (const page of pages) {
      const ok = res.write(page);
      if (!ok) await new Promise((resolve) => res.once("drain", resolve));
      if (res.destroyed) return;
    }
    res.end();
  });

  router.post("/:id/cancel", async (req, res) => {
    res.json(await batches.cancel(req.tenant!.id, req.params.id));
  });

  return router;
}
