import type pg from "pg";
import type { BatchStatus, BatchView, JobPriority, JobStatus, WebhookSpec } from "@inferline/contracts";
import type { PrismaClient, Batch } from "./generated/prisma/client.ts";
import type { JobStore, NewJob } from "./job-store.ts";
import type { Queryable } from "./database.ts";

export interface NewBatch {
  id: string;
  tenantId: string;
  model: string;
  version: string;
  priority: JobPriority;
  webhook: WebhookSpec | null;
  createdAt: Date;
}

const EMPTY_COUNTS = (): Record<JobStatus, number> => ({ queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 });

export class BatchStore {
  constructor(private readonly pool: pg.Pool, private readonly prisma: PrismaClient, private readonly jobs: JobStore) {}

  /** The batch row and every item's job row, in one transaction: all or nothing. */
  async create(batch: NewBatch, items: NewJob[]): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("begin");
      await client.query(
        `insert into batches (id, "tenantId", model, version, priority, total, remaining, webhook, "createdAt")
         values ($1, $2, $3, $4, $5::"JobPriority", $6, $6, $7, $8)`,
        [batch.id, batch.tenantId, batch.model, batch.version, batch.priority, items.length, batch.webhook ? JSON.stringify(batch.webhook) : null, batch.createdAt],
      );
      await this.jobs.insertMany(items, client);
      await client.query("commit");
    } catch (err) {
      await client.query("rollback").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async get(tenantId: string, id: string): Promise<Batch | null> {
    return this.prisma.batch.findFirst({ where: { id, tenantId } });
  }

  /** What a `batch.completed` event needs: owner, webhook, and the batch as the API shows it. */
  async eventSubject(id: string, q: Queryable = this.pool): Promise<{ tenantId: string; webhook: WebhookSpec | null; view: BatchView } | null> {
    const { rows } = await q.query<Batch>(`select * from batches where id = $1`, [id]);
    const batch = rows[0];
    return batch ? { tenantId: batch.tenantId, webhook: batch.webhook as WebhookSpec | null, view: await this.view(batch, q) } : null;
  }

  async view(batch: Batch, q: Queryable = this.pool): Promise<BatchView> {
    const { rows } = await q.query<{ status: JobStatus; n: number }>(`select status, count(*)::int as n from jobs where "batchId" = $1 group by status`, [batch.id]);
    const counts = EMPTY_COUNTS();
    for (const r of rows) counts[r.status] = r.n;
    const view: BatchView = {
      id: batch.id,
      status: batchStatus(batch, counts),
      model: batch.model,
      version: batch.version,
      priority: batch.priority,
      total: batch.total,
      counts,
      createdAt: batch.createdAt.toISOString(),
    };
    if (batch.completedAt) view.completedAt = batch.completedAt.toISOString();
    if (batch.canceledAt) view.canceledAt = batch.canceledAt.toISOString();
    return view;
  }

  async markCanceled(id: string, q: Queryable = this.pool): Promise<void> {
    await q.query(`update batches set "canceledAt" = coalesce("canceledAt", now()) where id = $1`, [id]);
  }

  /**
   * Results in submission order as NDJSON text, read in pages so that a 100,000-item batch streams
   * in flat memory. The stored result is spliced into each line as the text PostgreSQL holds:
   * parsing and re-serialising every result (or building the line with json functions in SQL)
   * cost more than the query.
   */
  async *resultLines(batchId: string, pageSize = 5000): AsyncGenerator<string> {
    let after = -1;
    for (;;) {
      const { rows } = await this.pool.query<{ i: number; customId: string | null; id: string; status: string; errorCode: string | null; errorMessage: string | null; result: string | null }>(
        `select "batchIndex" as i, "customId", id, status, "errorCode", "errorMessage", result::text as result
         from jobs where "batchId" = $1 and "batchIndex" > $2 order by "batchIndex" limit $3`,
        [batchId, after, pageSize],
      );
      if (rows.length === 0) return;
      let text = "";
      for (const r of rows) {
        text += `{"index":${r.i},"customId":${JSON.stringify(r.customId)},"jobId":"${r.id}","status":"${r.status}"`;
        if (r.result !== null) text += `,"result":${r.result}`;
        if (r.errorCode !== null) text += `,"error":${JSON.stringify({ code: r.errorCode, message: r.errorMessage ?? "" })}`;
        text += "}\n";
      }
      yield text;
      after = rows[rows.length - 1]!.i;
    }
  }
}

function batchStatus(batch: Batch, counts: Record<JobStatus, number>): BatchStatus {
  if (batch.completedAt || batch.remaining <= 0) return batch.canceledAt ? "canceled" : "completed";
  return counts.queued === batch.total ? "queued" : "running";
}
