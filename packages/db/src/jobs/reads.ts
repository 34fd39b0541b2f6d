import type pg from "pg";
import type { Job } from "../generated/prisma/client.ts";

/** One job of a tenant. Raw SQL: this is the polling hot path, where Prisma's per-query cost showed. */
export async function getJob(pool: pg.Pool, tenantId: string, id: string): Promise<Job | null> {
  const { rows } = await pool.query<Job>(`select * from jobs where id = $1 and "tenantId" = $2`, [id, tenantId]);
  return rows[0] ?? null;
}

/** Which of `ids` are stored: after a write whose commit went unanswered, what it did. */
export async function existingJobs(pool: pg.Pool, ids: string[]): Promise<Set<string>> {
  const { rows } = await pool.query<{ id: string }>(`select id from jobs where id = any($1::uuid[])`, [ids]);
  return new Set(rows.map((r) => r.id));
}

/** The tenant's job stored under an Idempotency-Key. Raw SQL: every retry of a keyed submit reads it. */
export async function findByIdempotencyKey(pool: pg.Pool, tenantId: string, key: string): Promise<Job | null> {
  const { rows } = await pool.query<Job>({
    name: "inferline.jobs.by-idempotency-key",
    text: `select * from jobs where "tenantId" = $1 and "idempotencyKey" = $2`,
    values: [tenantId, key],
  });
  return rows[0] ?? null;
}

/** Frees an idempotency key older than its retention so that it can be used again. */
export async function releaseIdempotencyKey(pool: pg.Pool, jobId: string): Promise<void> {
  await pool.query(`update jobs set "idempotencyKey" = null where id = $1`, [jobId]);
}
