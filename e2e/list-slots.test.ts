import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { sleepUntil, type HttpResponse } from "@inferline/testing";
import { LIST_WAITING } from "@inferline/api";
import { startStack, type TestStack } from "./support/stack.ts";

// A lock on `jobs` holds every list statement in PostgreSQL for as long as the test wants, so
// what reaches the database and what waits in the API can be seen without timing anything.
let stack: TestStack;
let db: Database;
beforeAll(async () => {
  // One slot a tenant; statements that wait on the test's lock as long as it holds it.
  const api = { MAX_LISTS_PER_TENANT: "1", DATABASE_STATEMENT_TIMEOUT_MS: "30000" };
  stack = await startStack({ worker: false, api });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

/** List statements (JobStore.list's) waiting on a lock; `filter` tells alpha's (status) from beta's (model). */
async function blockedLists(filter: "status" | "model"): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock' and query like '%scanned%' and query like $1`,
    [filter === "status" ? "%where status = %" : "%and model = %"],
  );
  return rows[0]!.n;
}

describe("GET /v1/jobs slots per tenant", () => {
  it("runs a tenant's MAX_LISTS_PER_TENANT lists at once, queues more, refuses past the queue; another's goes through", async () => {
    const lock = await db.pool.connect();
    const answers: Promise<HttpResponse>[] = [];
    try {
      await lock.query("begin");
      await lock.query("lock table jobs in access exclusive mode");
      answers.push(stack.alpha.get("/v1/jobs?status=failed"));
      await sleepUntil(async () => (await blockedLists("status")) === 1, {
        message: "alpha's list never reached PostgreSQL",
      });

      // One slot, LIST_WAITING.perTenant waiting: the one past them is refused at once.
      const queued = Array.from({ length: LIST_WAITING.perTenant + 1 }, () =>
        stack.alpha.get("/v1/jobs?status=failed"),
      );
      answers.push(...queued);
      const first = await Promise.race(queued);
      expect(first.status).toBe(429);
      expect(first.body.code).toBe("too_many_lists");
      expect(first.headers.get("retry-after")).toBe("1");

      answers.push(stack.beta.get("/v1/jobs?model=iris"));
      await sleepUntil(async () => (await blockedLists("model")) === 1, {
        message: "beta's list waited behind alpha's",
      });
      expect(await blockedLists("status")).toBe(1);
    } finally {
      await lock.query("commit");
      lock.release();
    }
    const statuses = (await Promise.all(answers)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIST_WAITING.perTenant + 2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1);
  });
});
