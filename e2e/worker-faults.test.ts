import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { deletePrefix, irisJob, LOOKUP_TABLE, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack();
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const lookup = (index: number) => ({
  model: "lookup",
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
});

describe("model errors", () => {
  it("a model that throws at run time fails the job with a code and message, once", async () => {
    const job = (await stack.alpha.post("/v1/jobs", lookup(7))).body;
    const done = (await stack.alpha.get(`/v1/jobs/${job.id}?wait=10`)).body;
    expect(done.status).toBe("failed");
    expect(done.error.code).toBe("inference_error");
    expect(done.error.message).toMatch(/indices|out of|bounds/i);
    expect(done.attempts).toBe(1);
  });

  it("one bad input in a batch fails only its own job", async () => {
    const indexes = [0, 1, 9, 2, 0, 1];
    const jobs = await Promise.all(indexes.map(async (i) => (await stack.alpha.post("/v1/jobs", lookup(i))).body));
    const done = await Promise.all(jobs.map(async (j) => (await stack.alpha.get(`/v1/jobs/${j.id}?wait=10`)).body));
    done.forEach((job, k) => {
      const index = indexes[k]!;
      if (index === 9) {
        expect(job.status).toBe("failed");
      } else {
        expect(job.status).toBe("succeeded");
        expect(job.result.outputs[0].data).toEqual(LOOKUP_TABLE[index]);
      }
    });
    const batches = await stack.worker!.metrics.batchSize.get();
    const sum = batches.values.find(
      (v) => v.metricName === "inferline_batch_size_items_sum" && v.labels.model === "lookup",
    );
    const count = batches.values.find(
      (v) => v.metricName === "inferline_batch_size_items_count" && v.labels.model === "lookup",
    );
    // Runs of >1 item happened: fewer session runs than jobs.
    expect(Number(count?.value)).toBeLessThan(Number(sum?.value));
  });
});

describe("transient faults", () => {
  it("a failed result write is retried with backoff and the job succeeds on a later attempt", async () => {
    // A real PostgreSQL error on the first result write of jobs tagged flaky=yes. A sequence
    // counts the faults because, unlike a table, it is not rolled back with the failed statement.
    await db.pool.query(`create sequence fault_seq;
      create or replace function flaky_write() returns trigger language plpgsql as $$
      begin
        if new.status = 'succeeded' and new.metadata->>'flaky' = 'yes' and nextval('fault_seq') = 1 then
          raise exception 'injected transient fault';
        end if;
        return new;
      end $$;
      create trigger flaky before update on jobs for each row execute function flaky_write();`);
    try {
      const job = (await stack.alpha.post("/v1/jobs", irisJob(undefined, { metadata: { flaky: "yes" } }))).body;
      const done = await sleepUntil(async () => {
        const r = (await stack.alpha.get(`/v1/jobs/${job.id}?wait=5`)).body;
        return r.status === "succeeded" ? r : undefined;
      });
      expect(done.attempts).toBe(2);
      expect(Number((await db.pool.query("select last_value from fault_seq")).rows[0].last_value)).toBe(2);
    } finally {
      await db.pool.query("drop trigger flaky on jobs");
    }
  });
});

describe("reconciler", () => {
  it("re-enqueues jobs that Redis lost, and runs each once", async () => {
    await stack.stopWorker();
    // Five runs of one input: the result cache (and its single flight) is bypassed, so each is queued work of its own.
    const jobs = await Promise.all(
      Array.from(
        { length: 5 },
        async () => (await stack.alpha.post("/v1/jobs", irisJob(undefined, { cache: "bypass" }))).body,
      ),
    );
    // Redis restarts without persistence: every queue entry is gone, the database still says queued.
    await deletePrefix(stack.prefix);
    const worker = await stack.startWorker({ RECONCILE_AFTER_MS: "0" });
    const requeued = await worker.reconciler.runOnce();
    expect(requeued).toBe(5);
    const done = await Promise.all(jobs.map(async (j) => (await stack.alpha.get(`/v1/jobs/${j.id}?wait=10`)).body));
    expect(done.map((j) => j.status)).toEqual(Array(5).fill("succeeded"));
    expect(done.map((j) => j.attempts)).toEqual(Array(5).fill(1));
    // Nothing left to do: a second pass finds no orphan.
    expect(await worker.reconciler.runOnce()).toBe(0);
  });
});
