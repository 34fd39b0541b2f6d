import type { Database } from "@inferline/db";

/** A moment `seconds` from now (negative: in the past), for deadlines a test wants passed or not. */
export const fromNow = (seconds: number): Date => new Date(Date.now() + seconds * 1000);

/** A job's deadline columns as the statements left them. */
export async function jobDeadlines(db: Database, id: string) {
  const { rows } = await db.pool.query<{ queueDeadline: Date | null; cancelAt: Date | null }>(
    `select "queueDeadline", "cancelAt" from jobs where id = $1`,
    [id],
  );
  return rows[0];
}

/** Sets a job's deadline columns directly (the API only ever writes future ones). */
export async function setJobDeadlines(
  db: Database,
  id: string,
  deadlines: { queueDeadline?: Date | null; cancelAt?: Date | null },
): Promise<void> {
  await db.pool.query(
    `update jobs set "queueDeadline" = case when $2 then $3 else "queueDeadline" end, "cancelAt" = case when $4 then $5 else "cancelAt" end where id = $1`,
    [
      id,
      "queueDeadline" in deadlines,
      deadlines.queueDeadline ?? null,
      "cancelAt" in deadlines,
      deadlines.cancelAt ?? null,
    ],
  );
}

/** Sets a batch's deadlines (every item's). */
export async function setBatchDeadlines(
  db: Database,
  id: string,
  deadlines: { queueDeadline?: Date | null; cancelAt?: Date | null },
): Promise<void> {
  await db.pool.query(`update batches set "queueDeadline" = $2, "cancelAt" = $3 where id = $1`, [
    id,
    deadlines.queueDeadline ?? null,
    deadlines.cancelAt ?? null,
  ]);
}

/** When a worker first took a queue entry (null: not yet; undefined: no such row). */
export async function dispatchStartedAt(db: Database, id: string): Promise<Date | null | undefined> {
  const { rows } = await db.pool.query<{ startedAt: Date | null }>(`select "startedAt" from dispatches where id = $1`, [
    id,
  ]);
  return rows[0]?.startedAt;
}

/** A chunk's expired count (chunkRow predates the column). */
export async function chunkExpired(db: Database, id: string): Promise<number | undefined> {
  const { rows } = await db.pool.query<{ expired: number }>(`select expired from batch_chunks where id = $1`, [id]);
  return rows[0]?.expired;
}
