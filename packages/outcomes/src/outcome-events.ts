import crypto from "node:crypto";
import {
  JobWebhookPayload,
  type BatchView,
  type BatchWebhookPayload,
  type WebhookEventType,
  type WebhookSpec,
} from "@inferline/contracts";
import {
  toJobView,
  type BatchStore,
  type FinishedJob,
  type NewWebhookEvent,
  type Queryable,
  type RecordedEvent,
  type WebhookEventRecorder,
} from "@inferline/db";

/** Events a job webhook receives when its spec names none: every job event. */
export const JOB_EVENT_TYPES: readonly WebhookEventType[] = JobWebhookPayload.shape.type.options;

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

/**
 * Records a webhook event for each job whose webhook wants `job.<status>` (the spec's `events`,
 * by default every job event), with the job as `GET /v1/jobs/:id` shows it. Two statements
 * whatever the number of jobs: one read of the jobs, one multi-row insert. Meant to run in the
 * transaction that finished the jobs, so a crash cannot keep the outcome and lose its event; the
 * caller enqueues the returned events after commit (what fails to enqueue, the sweep finds).
 */
export async function recordJobEvents(
  store: WebhookEventRecorder,
  finished: FinishedJob[],
  q?: Queryable,
): Promise<RecordedEvent[]> {
  const wanted = new Map<string, { job: FinishedJob; type: JobWebhookPayload["type"] }>();
  for (const job of finished) {
    const type = `job.${job.status}` as JobWebhookPayload["type"];
    if (job.webhook && JOB_EVENT_TYPES.includes(type) && wantsEvent(job.webhook, type, JOB_EVENT_TYPES))
      wanted.set(job.id, { job, type });
  }
  if (wanted.size === 0) return [];
  const jobs = await store.jobsForEvents([...wanted.keys()], q);
  const timestamp = new Date().toISOString();
  const events: NewWebhookEvent[] = [];
  for (const job of jobs) {
    const { job: finishedJob, type } = wanted.get(job.id)!;
    const payload: JobWebhookPayload = { type, timestamp, data: toJobView(job) };
    events.push({
      id: webhookEventId(job.id, type),
      tenantId: job.tenantId,
      jobId: job.id,
      batchId: null,
      type,
      url: finishedJob.webhook!.url,
      payload: JSON.stringify(payload),
    });
  }
  return store.insert(events, q);
}

export interface CompletedBatch {
  id: string;
  tenantId: string;
  webhook: WebhookSpec | null;
  /** The batch as the API shows it; carried as the event's `data`. */
  view: BatchView;
}

/** Records `batch.completed` for a batch whose webhook wants it. Returns null when it does not. */
export async function recordBatchCompletedEvent(
  store: WebhookEventRecorder,
  batch: CompletedBatch,
  q?: Queryable,
): Promise<RecordedEvent | null> {
  const type = "batch.completed";
  if (!batch.webhook || !wantsEvent(batch.webhook, type, [type])) return null;
  const payload: BatchWebhookPayload = { type, timestamp: new Date().toISOString(), data: batch.view };
  const [event] = await store.insert(
    [
      {
        id: webhookEventId(batch.id, type),
        tenantId: batch.tenantId,
        jobId: null,
        batchId: batch.id,
        type,
        url: batch.webhook.url,
        payload: JSON.stringify(payload),
      },
    ],
    q,
  );
  return event ?? null;
}

/**
 * Records `batch.completed` for a batch that just completed (`batches.eventSubject` reads it as
 * the API shows it). Meant to run in the transaction that completed it, so the completion and
 * its event are committed together; the caller enqueues the returned events after commit.
 */
export async function recordBatchCompleted(
  store: WebhookEventRecorder,
  batches: Pick<BatchStore, "eventSubject">,
  batchId: string,
  q?: Queryable,
): Promise<RecordedEvent[]> {
  const batch = await batches.eventSubject(batchId, q);
  const event = batch ? await recordBatchCompletedEvent(store, { id: batchId, ...batch }, q) : null;
  return event ? [event] : [];
}
