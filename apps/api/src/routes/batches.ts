import crypto from "node:crypto";
import type http from "node:http";
import express, { Router, type Request, type Response } from "express";
import bytes from "bytes";
import {
  BatchHeader,
  BatchListQuery,
  BatchSubmission,
  type BatchListPage,
  type FieldFault,
} from "@inferline/contracts";
import type { BatchCreateOptions, BatchService, CreatedBatch } from "../services/batch-service.ts";
import { CONTENT_ENCODING_FAULT, decodedBody } from "../body-encoding.ts";
import { sendProblem, zodFaults } from "../problem.ts";
import { longPollHandler } from "./long-poll-handler.ts";
import type { ApiMetrics } from "../metrics.ts";
import { IDEMPOTENCY_KEY_FAULT, IdempotencyKey } from "../services/idempotency.ts";
import { CANCEL_AFTER_FAULT, CANCEL_AFTER_HINT, cancelAfterHeader } from "../services/deadlines.ts";
import { ndjsonLines } from "./ndjson.ts";
import { admitBatchUpload, closeUnread } from "../middleware/batch-upload-admission.ts";
import { slotLease } from "../middleware/slot-admission.ts";
import { admitResultStream, writePages } from "./result-stream.ts";
import { serverSpan } from "../middleware/server-span.ts";
import type { TenantSlots } from "../services/tenant-slots.ts";
import { listHandler } from "./list-handler.ts";

const isNdjson = (type: string | undefined) =>
  /^application\/(x-)?(nd|jsonl|json-seq|x-ndjson)/i.test(type ?? "") || /ndjson|jsonl/i.test(type ?? "");

/** Answers a create with a problem, discarding what is left of its body. */
type Refuse = (status: number, code: string, detail: string, errors?: FieldFault[]) => void;

/** A create whose headers passed: how to refuse it, its Idempotency-Key, and what the headers set. */
interface CreateRequest {
  req: Request;
  refuse: Refuse;
  key: string | undefined;
  options: BatchCreateOptions;
}

/** A request whose raw JSON body was hashed as it was parsed (only when it carries an Idempotency-Key). */
type HashedRequest = http.IncomingMessage & { bodySha256?: string };

/** What the batch routes count. */
type BatchRouteMetrics = Pick<ApiMetrics, "resultStreams" | "resultStreamsAborted" | "submitted">;

export function batchesRouter(
  batches: BatchService,
  limit: string,
  lists: TenantSlots,
  metrics?: BatchRouteMetrics,
): Router {
  const router = Router();
  const limitBytes = bytes.parse(limit) ?? 200 * 1024 * 1024;
  const json = express.json({
    limit,
    strict: true,
    type: (req) => !isNdjson(req.headers["content-type"]),
    verify: (req: HashedRequest, _res, buf) => {
      if (req.headers["idempotency-key"] !== undefined)
        req.bodySha256 = crypto.createHash("sha256").update(buf).digest("hex");
    },
  });

  // The upload slot first: nothing of the body is read before a creation is admitted.
  router.post("/", admitBatchUpload(batches.uploads), json, serverSpan("/v1/batches"), async (req, res) => {
    const lease = slotLease(res);
    if (lease && !lease.hold()) return; // the client left while its body was parsed
    try {
      await createBatch(req, res);
    } catch (err) {
      if (req.socket.destroyed) return; // the client went away: no one to answer, and the create rolled back
      closeUnread(req, res);
      throw err;
    } finally {
      lease?.release();
    }
  });

  async function createBatch(req: Request, res: Response): Promise<void> {
    const refuse: Refuse = (status, code, detail, errors) => {
      closeUnread(req, res);
      sendProblem(res, status, code, detail, errors);
    };
    const keyHeader = req.header("idempotency-key");
    const key = keyHeader === undefined ? undefined : IdempotencyKey.safeParse(keyHeader);
    if (key && !key.success) {
      return refuse(400, "invalid_idempotency_key", IDEMPOTENCY_KEY_FAULT.message, [IDEMPOTENCY_KEY_FAULT]);
    }
    const cancelAfter = cancelAfterHeader(req.header("cancel-after"));
    if (!cancelAfter) return refuse(400, "invalid_cancel_after", CANCEL_AFTER_HINT, [CANCEL_AFTER_FAULT]);
    const request: CreateRequest = {
      req,
      refuse,
      key: key?.data,
      options: { cancelAfterSeconds: cancelAfter.seconds },
    };
    const ndjson = isNdjson(req.headers["content-type"]);
    const created = ndjson ? await createFromNdjson(request) : await createFromJson(request);
    if (!created) return;
    if (!created.replayed) metrics?.submitted("batch", created.batch.model, created.batch.total);
    res
      .status(created.replayed ? 200 : 202)
      .location(`/v1/batches/${created.batch.id}`)
      .json(created.batch);
  }

  /** NDJSON: the batch's settings come from the query string, one item per line of the (possibly compressed) body. */
  async function createFromNdjson({ req, refuse, key, options }: CreateRequest): Promise<CreatedBatch | undefined> {
    const { webhookUrl, ...settings } = req.query;
    const webhook = webhookUrl === undefined ? {} : { webhook: { url: webhookUrl } };
    const header = BatchHeader.safeParse({ ...settings, ...webhook });
    if (!header.success) {
      return void refuse(422, "validation_failed", "invalid query parameters", zodFaults(header.error, "/query"));
    }
    const decoded = decodedBody(req);
    if (!decoded) {
      const detail = `unsupported content encoding "${req.headers["content-encoding"]}"`;
      return void refuse(415, "unsupported_encoding", detail, [CONTENT_ENCODING_FAULT]);
    }
    // The hash and the limits count the inflated bytes, as express.json's do for a JSON body (whose
    // Content-Length, when encoded, counts the compressed bytes instead).
    const hash = crypto.createHash("sha256");
    let digest: string | undefined;
    const idempotency = key ? { key, digest: () => (digest ??= hash.digest("hex")) } : undefined;
    const length = req.headers["content-length"];
    const declared = decoded.encoded || length === undefined ? undefined : Number(length);
    const limits = { bodyBytes: limitBytes, lineBytes: batches.maxLineBytes };
    const lines = ndjsonLines(decoded.body, declared, limits, idempotency ? hash : undefined);
    try {
      return await batches.create(req.tenant!, header.data, lines, { ...options, idempotency, settingsAt: "/query" });
    } finally {
      decoded.stop(); // a body refused part way (413, 422) is inflated no further
    }
  }

  /** JSON: parsed (and inflated) by express.json, which hashed its bytes when there is an Idempotency-Key. */
  async function createFromJson({ req, refuse, key, options }: CreateRequest): Promise<CreatedBatch | undefined> {
    const body = BatchSubmission.safeParse(req.body);
    // The parsed body lives on only in `items`, which create() empties as it reads: no second copy.
    req.body = undefined;
    if (!body.success) {
      return void refuse(422, "validation_failed", "the request has invalid fields", zodFaults(body.error));
    }
    const digest = (req as HashedRequest).bodySha256 ?? "";
    const { items, ...settings } = body.data;
    const idempotency = key ? { key, digest: () => digest } : undefined;
    return batches.create(req.tenant!, settings, items, { ...options, idempotency });
  }

  router.get(
    "/",
    listHandler(
      BatchListQuery,
      lists,
      (tenantId, query) => batches.list(tenantId, query) satisfies Promise<BatchListPage>,
    ),
  );

  router.get(
    "/:id",
    longPollHandler((tenantId, id, seconds, signal) => batches.wait(tenantId, id, seconds, signal)),
  );

  // One slot per stream, held until the response closes (a client that stops reading is cut off
  // after RESULT_STREAM_IDLE_MS; see writePages).
  router.get("/:id/results", admitResultStream(batches.resultStreams.slots));
  router.get("/:id/results", async (req, res) => {
    const pages = await batches.results(req.tenant!.id, req.params.id);
    res.status(200).type("application/x-ndjson");
    metrics?.resultStreams.inc();
    try {
      const end = await writePages(res, pages, batches.resultStreams.idleMs);
      if (end !== "ended") metrics?.resultStreamsAborted.inc();
    } finally {
      metrics?.resultStreams.dec();
    }
  });

  router.post("/:id/cancel", async (req, res) => {
    res.json(await batches.cancel(req.tenant!.id, req.params.id));
  });

  return router;
}
