import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { JobSubmission, JobView } from "@inferline/contracts";
import {
  JobStore,
  submittedFields,
  toJobView,
  viewOfAnsweredJob,
  viewOfNewJob,
  WebhookEventStore,
  type AnsweredJob,
  type NewJob,
} from "@inferline/db";
import { INSERT_FIELDS, JOB_COLUMNS, SUBMITTED_FIELDS } from "../src/jobs/columns.ts";
import { newJobRow } from "../src/jobs/insert.ts";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, tensor } from "./support/rows.ts";

/*
 * The column table (src/jobs/columns.ts) is the one list of a job's columns: these tests check
 * that what derives from it (the insert documents and statements, the select lists, the view
 * and every path that shows it) leaves no column out. The jobs they build take a value for every
 * insert column from its SQL type, so a column added to the table is covered without a change here.
 */

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);
const RESULT = { model_name: "iris", model_version: "1", outputs: [] };

/** A value of each SQL type the table uses, unlike the column's default. */
const SAMPLES: Record<string, () => unknown> = {
  uuid: () => crypto.randomUUID(),
  text: () => `text-${crypto.randomUUID()}`,
  "text[]": () => ["a", "b"],
  json: () => [tensor(2)],
  jsonb: () => ({ url: "https://example.com/hook", note: "x" }),
  timestamptz: () => new Date(Date.now() + 3_600_000),
  boolean: () => true,
  '"JobPriority"': () => "high",
};

/** A job with a value in every insert column (metadata as the view's contract has it). */
function fullJob(tenantId: string): NewJob {
  const job: Record<string, unknown> = {};
  for (const f of INSERT_FIELDS) job[f] = SAMPLES[JOB_COLUMNS[f].type]!();
  return { ...(job as unknown as NewJob), tenantId, createdAt: new Date(), metadata: { order: "17" } };
}

/** The stored job, read through Prisma (which maps fields to columns on its own, from schema.prisma). */
async function stored(id: string): Promise<Record<string, unknown>> {
  return (await database().prisma.job.findUnique({ where: { id } })) as Record<string, unknown>;
}

/** Every field of `job` as stored, but those the statement sets otherwise. */
async function expectStored(job: NewJob, otherwise: Record<string, unknown> = {}): Promise<void> {
  const row = await stored(job.id);
  const expected = { ...job, ...otherwise } as Record<string, unknown>;
  for (const f of Object.keys(job)) expect(row[f], f).toEqual(expected[f]);
}

describe("the job column table", () => {
  it("puts every NewJob field in the insert document, and every insert stores each", async () => {
    const tenant = await createTenant(database());
    const queued = fullJob(tenant);
    expect(Object.keys(newJobRow(queued)).sort()).toEqual([...INSERT_FIELDS].sort());
    expect(Object.keys(queued).sort()).toEqual([...INSERT_FIELDS].sort());
    await store().insertMany([queued]);
    await expectStored(queued);

    const answered: AnsweredJob = { ...fullJob(tenant), resultJson: JSON.stringify(RESULT), answeredAt: new Date() };
    await store().insertAnswered([answered]);
    const { resultJson: _, answeredAt: __, ...answeredJob } = answered;
    await expectStored(answeredJob, { dispatchId: null, queueDeadline: null, cancelAt: null });

    const follower = { ...fullJob(tenant), cacheKey: queued.cacheKey };
    const followed = await store().insertFollowers({ id: queued.id, tenantId: tenant, cacheKey: queued.cacheKey! }, [
      follower,
    ]);
    expect(followed.inserted).toHaveLength(1);
    await expectStored(follower, { dispatchId: null, leadsFlight: false });
  });

  it("shows the same view, with every field of the contract, whichever path reads it", async () => {
    const tenant = await createTenant(database());
    const [succeeded, failed] = [fullJob(tenant), fullJob(tenant)];
    await store().insertMany([succeeded, failed]);
    const views = new Map<string, string>();
    for (const job of [succeeded, failed]) views.set(job.id, JSON.stringify(viewOfNewJob(job)));
    await expectViews(tenant, views);

    const finished = await store().finish([
      { id: succeeded.id, status: "succeeded", resultJson: JSON.stringify(RESULT) },
      { id: failed.id, status: "failed", errorCode: "inference_failed", errorMessage: "bad input" },
    ]);
    for (const { id, viewJson } of finished) views.set(id, viewJson!);
    const answeredAt = new Date();
    const answered: AnsweredJob = { ...fullJob(tenant), resultJson: JSON.stringify(RESULT), answeredAt };
    await store().insertAnswered([answered]);
    views.set(answered.id, JSON.stringify(viewOfAnsweredJob(answered, RESULT, answeredAt)));
    await expectViews(tenant, views);

    const shown = new Set([...views.values()].flatMap((text) => Object.keys(JobView.strict().parse(JSON.parse(text)))));
    const batchItemOnly = ["batchId", "customId"];
    expect([...shown].sort()).toEqual(
      Object.keys(JobView.shape)
        .filter((k) => !batchItemOnly.includes(k))
        .sort(),
    );
  });

  it("carries the request's fields the table marks as submitted into the job and its insert document, as the request schema reads them", () => {
    const inputs = [{ name: "x", datatype: "FP32", shape: [1], data: [1] }];
    const body = JobSubmission.parse({
      model: "iris",
      inputs,
      priority: "low",
      metadata: { a: "b" },
      webhook: { url: "https://example.com/hook" },
    });
    const fields = submittedFields(body) as Record<string, unknown>;
    expect(Object.keys(fields).sort()).toEqual([...SUBMITTED_FIELDS].sort());
    const row = newJobRow({ ...fullJob("tenant"), ...fields }) as Record<string, unknown>;
    for (const f of SUBMITTED_FIELDS) {
      expect(fields[f], f).toEqual(body[f] ?? null);
      expect(JobSubmission.shape[f].parse(row[f] ?? undefined), f).toEqual(body[f]);
    }
  });
});

/** Every path's view of each job equals `views` (the same JSON text: the same fields in the same order). */
async function expectViews(tenant: string, views: Map<string, string>): Promise<void> {
  const ids = [...views.keys()];
  const listed = (await store().list(tenant, { limit: 500 })).jobs;
  const forEvents = await new WebhookEventStore(database().pool).jobsForEvents(ids);
  for (const id of ids) {
    const view = views.get(id);
    expect(JSON.stringify(toJobView((await store().get(tenant, id))!)), `GET ${id}`).toBe(view);
    expect(JSON.stringify(toJobView(listed.find((j) => j.id === id)!)), `list ${id}`).toBe(view);
    expect(JSON.stringify(toJobView(forEvents.find((j) => j.id === id)!)), `webhook event ${id}`).toBe(view);
  }
}
