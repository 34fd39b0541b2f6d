import crypto from "node:crypto";
import type { JobView, WebhookEventType, WebhookSpec } from "@inferline/contracts";
import { toJobView, type BatchStore, type FinishedJob, type Job, type Queryable } from "@inferline/db";
import type { WebhookQueue } from "./queue.ts";

/** Events a job webhook receives when its spec names none. */
export const JOB_EVENT_TYPES: readonly WebhookEventType[] = ["job.succeeded", "job.failed", "job.canceled"];

export interface RecordedEvent {
  id: string;
  tenantId: string;
  type: WebhookEventType;
}

/** The body every attempt of an event carries. */
export interface WebhookPayload<T = unknown> {
  type: WebhookEventType;
  timestamp: string;
  data: T;
}

/**
 * The webhook-id of an event: derived from its subject and type, so that recording the same
 * event twice (a duplicate hook call, a retried statement) inserts one row, never two deliveries.
 */
export function webhookEventId(subjectId: string, type: WebhookEventType): string {
  return `msg_${crypto.createHash("sha256").update(`${subjectId}\n${type}`).digest("hex").slice(0, 32)}`;
}

export function wantsEvent(spec: WebhookSpec, type: WebhookEventType, defaults: readonly WebhookEventType[]): boolean {
  return (spec.events ?? defaults).includes(type);
}

interface EventRow {
  id: string;
  tenantId: string;
  jobId: string | null;
  batchId: string | null;
  type: WebhookEventType;
  url: string;
  payload: string;
}

/** Columns toJobView reads (all but the inputs, which can be large and are not shown). */
const VIEW_COLUMNS = `id, "tenantId", status, model, version, priority, "createdAt", "startedAt", "completedAt", attempts, metadata, result, "errorCode", "errorMessage"`;

/**
 * Records a webhook event for each job whose webhook wants `job.<status>` (the spec's `events`,
 * by default every job event), with the job as `GET /v1/jobs/:id` shows it, and enqueues their
 * deliveries when `queue` is given (otherwise the worker's sweep enqueues them). Two statements
 * whatever the number of jobs: one read of the jobs, one multi-row insert. The row is written
 * before any delivery is attempted, so a crash after this point loses no event.
 */
export async function recordJobEvents(db: Queryable, finished: FinishedJob[], queue?: WebhookQueue): Promise<RecordedEvent[]> {
  const wanted = new Map<string, { job: FinishedJob; type: WebhookEventType }>();
  for (const job of finished) {
    const type = `job.${job.status}` as WebhookEventType;
    if (job.webhook && JOB_EVENT_TYPES.includes(type) && wantsEvent(job.webhook, type, JOB_EVENT_TYPES)) wanted.set(job.id, { job, type });
  }
  if (wanted.size === 0) return [];
  const { rows: jobs } = await db.query<Job>(`select ${VIEW_COLUMNS} from jobs where id = any($1::uuid[])`, [[...wanted.keys()]]);
  const timestamp = new Date().toISOString();
  const events: EventRow[] = [];
  for (const job of jobs) {
    const { job: finishedJob, type } = wanted.get(job.id)!;
    const payload: WebhookPayload<JobView> = { type, timestamp, data: toJobView(job) };
    events.push({ id: webhookEventId(job.id, type), tenantId: job.tenantId, jobId: job.id, batchId: null, type, url: finishedJob.webhook!.url, payload: JSON.stringify(payload) });
  }
  return insertAndEnqueue(db, events, queue);
}

export interface CompletedBatch<V = unknown> {
  id: string;
  tenantId: string;
  webhook: WebhookSpec | null;
  /** The batch as the API shows it; carried as the event's `data`. */
  view: V;
}

/** Records (and, with `queue`, enqueues) `batch.completed` for a batch whose webhook wants it. Returns null when it does not. */
export async function recordBatchCompletedEvent(db: Queryable, batch: CompletedBatch, queue?: WebhookQueue): Promise<RecordedEvent | null> {
  const type: WebhookEventType = "batch.completed";
  if (!batch.webhook || !wantsEvent(batch.webhook, type, [type])) return null;
  const payload: WebhookPayload = { type, timestamp: new Date().toISOString(), data: batch.view };
  const [event] = await insertAndEnqueue(db, [{ id: webhookEventId(batch.id, type), tenantId: batch.tenantId, jobId: null, batchId: batch.id, type, url: batch.webhook.url, payload: JSON.stringify(payload) }], queue);
  return event ?? null;
}

async function insertAndEnqueue(db: Queryable, events: EventRow[], queue: WebhookQueue | undefined): Promise<RecordedEvent[]> {
  if (events.length === 0) return [];
  // nextAttemptAt = now: the first attempt is due at once; the sweep looks for pending events overdue by some margin.
  const { rows } = await db.query<RecordedEvent>(
    `insert into webhook_events (id, "tenantId", "jobId", "batchId", type, url, payload, "nextAttemptAt")
     select u.id, u.tenant, u.job, u.batch, u.type, u.url, u.payload, now()
     from unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::json[]) as u(id, tenant, job, batch, type, url, payload)
     on conflict (id) do nothing
     returning id, "tenantId", type`,
    [events.map((e) => e.id), events.map((e) => e.tenantId), events.map((e) => e.jobId), events.map((e) => e.batchId), events.map((e) => e.type), events.map((e) => e.url), events.map((e) => e.payload)],
  );
  if (queue) await queue.enqueue(rows);
  return rows;
}

/**
 * Records `batch.completed` for a batch that just completed (`batches.eventSubject` reads it as
 * the API shows it). Meant to run in the transaction that completed it, so the completion and
 * its event are committed together; enqueue the returned ids after commit (what fails to
 * enqueue, the sweep finds).
 */
export async function recordBatchCompleted(q: Queryable, batchId: string, batches: Pick<BatchStore, "eventSubject">): Promise<RecordedEvent[]> {
  const batch = await batches.eventSubject(batchId, q);
  const event = batch ? await recordBatchCompletedEvent(q, { id: batchId, ...batch }) : null;
  return event ? [event] : [];
}
