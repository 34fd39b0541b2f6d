import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisInput, irisJob, IRIS_SAMPLES, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

/**
 * One tenant's reads never take the connections another tenant's submits need: lists read on a
 * pool of their own. Alpha's lists are made as slow as they can get (a lock holds the table they
 * read until their statement timeout), thirty at once with the per-tenant cap out of the way,
 * while beta submits.
 */

let stack: TestStack;
let locker: pg.Client;
let peek: pg.Client;

beforeAll(async () => {
  // Statements may run 5 s, longer than a wait for a connection may last (1.5 s).
  stack = await startStack({
    worker: false,
    api: { MAX_LISTS_PER_TENANT: "30", DATABASE_STATEMENT_TIMEOUT_MS: "5000" },
  });
  locker = new pg.Client({ connectionString: stack.db.url });
  peek = new pg.Client({ connectionString: stack.db.url });
  await Promise.all([locker.connect(), peek.connect()]);
});
afterAll(async () => {
  await locker?.end();
  await peek?.end();
  await stack?.close();
});

/** Statements of this database waiting for a lock (alpha's lists behind the test's lock). */
async function lockWaiters(): Promise<number> {
  const { rows } = await peek.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

describe("a tenant's slow lists", () => {
  it("leave every other tenant's submits served at once", async () => {
    const batch = await stack.alpha.post("/v1/batches", {
      model: "iris",
      items: [{ inputs: [irisInput([IRIS_SAMPLES.setosa])] }],
    });
    expect(batch.status).toBe(202);
    await locker.query("begin");
    await locker.query("lock table batch_chunks in access exclusive mode");
    const lists = Array.from({ length: 30 }, () => stack.alpha.get(`/v1/jobs?batchId=${batch.body.id}`));
    try {
      // The lists reach PostgreSQL and wait there (every connection they may take) before beta submits.
      await sleepUntil(async () => (await lockWaiters()) >= 4, {
        timeoutMs: 10_000,
        message: "alpha's lists wait on the lock",
      });
      const submits = await Promise.all(
        Array.from({ length: 20 }, () => stack.beta.post("/v1/jobs", irisJob([IRIS_SAMPLES.virginica]))),
      );
      expect(submits.map((s) => s.status)).toEqual(Array<number>(20).fill(202));
    } finally {
      await locker.query("rollback");
    }
    for (const list of await Promise.all(lists)) expect([200, 503]).toContain(list.status);
  });
});
