import type pg from "pg";
import type { BatchListQuery, BatchStatus } from "@inferline/contracts";
import { afterCursor, boundedPage } from "./bounded-page.ts";

/**
 * A batch's status as BatchStore.view tells it (batchStatus), in SQL over the scanned `batches`
 * row: finished (completed or canceled) from the batch's own columns; else running once an item
 * of one of its chunks runs or has succeeded or failed (one probe of the chunks' unique index).
 */
const STATUS = `case
    when batches."completedAt" is not null or batches.remaining <= 0 then case when batches."canceledAt" is not null then 'canceled' else 'completed' end
    when exists (select 1 from batch_chunks c where c."batchId" = batches.id
      and (c.succeeded + c.failed > 0 or (c."startedAt" is not null and c.size > c.succeeded + c.failed + c.canceled + c.expired))) then 'running'
    else 'queued' end`;

/** The columns of a batch that its view shows, as the list statement returns them. */
const LISTED_COLUMNS = `b.model, b.version, b.priority, b.total, b.remaining, b."completedAt", b."canceledAt"`;

/**
 * One page of a tenant's batches, newest first, through the batches' (tenantId, createdAt desc)
 * index: rows with `hit` are the page's batches (at most `limit + 1`), a row without is where a
 * scan that ran out of its `scanRows` ended (see boundedPage). Status and model are checked on
 * the rows the scan yields, so a filtered page may be short, even empty, before the last.
 */
export function batchListStatement(tenantId: string, query: BatchListQuery, scanRows: number): pg.QueryConfig {
  const values: unknown[] = [tenantId];
  const param = (value: unknown, type: string) => `$${values.push(value)}::${type}`;
  const range = [`"tenantId" = $1::uuid`];
  if (query.cursor !== undefined) range.push(afterCursor(query.cursor, param));
  const filters: string[] = [];
  if (query.model !== undefined) filters.push(`model = ${param(query.model, "text")}`);
  if (query.status !== undefined) filters.push(`status = ${param(query.status satisfies BatchStatus, "text")}`);
  const scanned = `model, ${query.status === undefined ? "null" : STATUS} as status`;
  const match = filters.length ? `where ${filters.join(" and ")}` : "";
  const page = boundedPage({ table: "batches", range, scanned, match, scanRows, limit: query.limit, param });
  return {
    text: `${page}
      select page.hit, page.id, page."createdAt", ${LISTED_COLUMNS}
      from page left join batches b on page.hit and b.id = page.id
      order by page.hit desc, page."createdAt" desc, page.id desc`,
    values,
  };
}
