import { describe, expect, it } from "vitest";
import { JobStore, type Queryable } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, dispatchRow, jobRow, newJob } from "./support/rows.ts";

// Which writes commit without waiting for their WAL flush: those a crash may lose because they
// are done again (a claim, a standalone job's result), never an insert or a transaction that
// records webhook events. Each statement is run here inside a transaction of the test's, so that
// the transaction's synchronous_commit shows what the statement asked its commit to do.

const database = useTestDatabase();
const store = () => new JobStore(database().pool, database().prisma);
const RESULT = JSON.stringify({ model_name: "iris", model_version: "1", outputs: [] });

/** Runs `write` in a transaction that is rolled back; returns its result and the transaction's synchronous_commit after it. */
async function inTransaction<T>(write: (q: Queryable) => Promise<T>): Promise<{ value: T; synchronousCommit: string }> {
  const client = await database().pool.connect();
  try {
    await client.query("begin");
    const value = await write(client);
    const { rows } = await client.query<{ synchronous_commit: string }>("show synchronous_commit");
    return { value, synchronousCommit: rows[0]!.synchronous_commit };
  } finally {
    await client.query("rollback");
    client.release();
  }
}

describe("JobStore commits without a WAL flush only what is redone after a crash", () => {
  it("finishStandalone: writes the results and forgets the entry, committing relaxed", async () => {
    const tenant = await createTenant(database());
    const job = newJob(tenant);
    await store().insertMany([job]);
    const { value, synchronousCommit } = await inTransaction((q) =>
      store().finishStandalone([{ id: job.id, status: "succeeded", resultJson: RESULT }], [job.dispatchId!], q),
    );
    expect(value.map((f) => f.id)).toEqual([job.id]);
    expect(synchronousCommit).toBe("off");
    // Autocommitted, as the worker runs it: the write holds like any other.
    await store().finishStandalone([{ id: job.id, status: "succeeded", resultJson: RESULT }], [job.dispatchId!]);
    expect(await jobRow(database(), job.id)).toMatchObject({ status: "succeeded" });
    expect(await dispatchRow(database(), job.dispatchId!)).toBeUndefined();
  });

  it("finishUnclaimed commits relaxed; finish, insertMany and cancel keep the flush", async () => {
    const tenant = await createTenant(database());
    const [a, c] = [newJob(tenant), newJob(tenant)];
    await store().insertMany([a, c]);
    expect(
      (
        await inTransaction((q) =>
          store().finishUnclaimed({ id: a.id, status: "succeeded", resultJson: RESULT }, a.dispatchId!, new Date(), q),
        )
      ).synchronousCommit,
    ).toBe("off");
    expect(
      (await inTransaction((q) => store().finish([{ id: c.id, status: "succeeded", resultJson: RESULT }], [], q)))
        .synchronousCommit,
    ).toBe("on");
    expect((await inTransaction((q) => store().insertMany([newJob(tenant)], q))).synchronousCommit).toBe("on");
    expect((await inTransaction((q) => store().cancel(tenant, c.id, q))).synchronousCommit).toBe("on");
  });
});
