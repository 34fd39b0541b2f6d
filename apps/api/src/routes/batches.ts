import crypto from "node:crypto";
import type http from "node:http";
import express, { Router } from "express";
import bytes from "bytes";
import { BatchHeader, BatchSubmission } from "@inferline/contracts";
import type { BatchService } from "../services/batch-service.ts";
import { sendProblem, zodFaults } from "../problem.ts";
import { longPollHandler } from "./long-poll-handler.ts";
import { IdempotencyKey } from "../services/idempotency.ts";
import { ndjsonLines } from "./ndjson.ts";

const isNdjson = (type: string | undefined) => /^application\/(x-)?(nd|jsonl|json-seq|x-ndjson)/i.test(type ?? "") || /ndjson|jsonl/i.test(type ?? "");

/** A request whose raw JSON body was hashed as it was parsed (only when it carries an Idempotency-Key). */
type HashedRequest = http.IncomingMessage & { bodySha256?: string };

export function batchesRouter(batches: BatchService, limit: string): Router {
  const router = Router();
  const limitBytes = bytes.parse(limit) ?? 200 * 1024 * 1024;
  const json = express.json({
    limit,
    strict: true,
    type: (req) => !isNdjson(req.headers["content-type"]),
    verify: (req: HashedRequest, _res, buf) => {
      if (req.headers["idempotency-key"] !== undefined) req.bodySha256 = crypto.createHash("sha256").update(buf).digest("hex");
    },
  });

  router.post("/", json, async (req, res) => {
    const keyHeader = req.header("idempotency-key");
    const key = keyHeader === undefined ? undefined : IdempotencyKey.safeParse(keyHeader);
    if (key && !key.success) return sendProblem(res, 400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters");
    let created;
    if (isNdjson(req.headers["content-type"])) {
      // NDJSON: the batch's settings come from the query string, one item per line of the body.
      const header = BatchHeader.safeParse({ ...req.query, webhook: req.query.webhookUrl ? { url: req.query.webhookUrl } : undefined, webhookUrl: undefined });
      if (!header.success) return sendProblem(res, 422, "validation_failed", "invalid query parameters", zodFaults(header.error, "/query"));
      const hash = crypto.createHash("sha256");
      let digest: string | undefined;
      const idempotency = key?.data ? { key: key.data, digest: () => (digest ??= hash.digest("hex")) } : undefined;
      created = await batches.create(req.tenant!.id, header.data, ndjsonLines(req, limitBytes, idempotency ? hash : undefined), idempotency);
    } else {
      const body = BatchSubmission.safeParse(req.body);
      if (!body.success) return sendProblem(res, 422, "validation_failed", "the request has invalid fields", zodFaults(body.error));
      const digest = (req as HashedRequest).bodySha256 ?? "";
      created = await batches.create(req.tenant!.id, body.data, body.data.items, key?.data ? { key: key.data, digest: () => digest } : undefined);
    }
    res.status(created.replayed ? 200 : 202).location(`/v1/batches/${created.batch.id}`).json(created.batch);
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
