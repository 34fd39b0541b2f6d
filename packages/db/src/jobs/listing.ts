import type pg from "pg";
import type { JobListQuery } from "@inferline/contracts";
import { afterCursor, boundedPage, encodeCursor, splitPage } from "../bounded-page.ts";
import { columnList, VIEW_FIELDS, type JobViewFields } from "./columns.ts";

/**
 * The most of a tenant's jobs one page of GET /v1/jobs reads to check a status filter. No index
 * holds `status` (job updates then stay HOT; see schema.prisma), so the status is checked on the
 * rows the tenant's index (or its model's) yields: a page reads at most this many after its
 * cursor and, when they hold fewer than `limit` matches, is short (even empty) with a cursor that
 * goes on after the last job it read. At 10,000,000 jobs of one tenant (bench/list-at-scale.ts,
 * table in the OS cache) the costliest page, a status absent from a model whose jobs are spread
 * thin over the table, takes tens of milliseconds, far inside the API's 1.5 s statement timeout:
 * the margin is for pages read from disk. The work to walk a filter to its end does not depend on
 * this bound, only how it is cut into requests (1,001 pages for a status absent from 10M jobs).
 */
export const LIST_SCAN_ROWS = 10_000;

/** The columns of a job that its view reads (see toJobView) but those the page has, as the list statement returns them. */
const LISTED_COLUMNS = columnList(
  VIEW_FIELDS.filter((f) => f !== "id" && f !== "createdAt"),
  "j.",
);

/**
 * One page of a tenant's jobs: rows with `hit` are the page's jobs, newest first (at most
 * `limit + 1`, the last telling that more follow); a row without is the last job the scan read,
 * present only when the scan read all `scanRows` it may and found at most `limit` matches.
 * The statement is boundedPage's; the scan reads the tenant's index (of the model: its own).
 */
export function listStatement(tenantId: string, query: JobListQuery, scanRows: number): pg.QueryConfig {
  const values: unknown[] = [tenantId];
  const param = (value: unknown, type: string) => `$${values.push(value)}::${type}`;
  const range = [`"tenantId" = $1::uuid`];
  if (query.model !== undefined) range.push(`model = ${param(query.model, "text")}`);
  if (query.cursor !== undefined) range.push(afterCursor(query.cursor, param));
  const match = query.status === undefined ? "" : `where status = ${param(query.status, `"JobStatus"`)}`;
  const page = boundedPage({ table: "jobs", range, scanned: "status", match, scanRows, limit: query.limit, param });
  return {
    text: `${page}
      select page.hit, page.id, page."createdAt", ${LISTED_COLUMNS}
      from page left join jobs j on page.hit and j.id = page.id
      order by page.hit desc, page."createdAt" desc, page.id desc`,
    values,
  };
}

/** A row of the list statement: a job of the page (`hit`), or where the page's scan ended. */
type ListedRow = JobViewFields & { hit: boolean };

/**
 * A page of the tenant's jobs, newest first; `nextCursor` continues after the page (see
 * listStatement). With a status filter a page reads at most `scanRows` jobs, so it may hold
 * fewer than `limit` (even none) while `nextCursor` is not null.
 */
export async function listJobs(
  pool: pg.Pool,
  tenantId: string,
  query: JobListQuery,
  scanRows: number,
): Promise<{ jobs: JobViewFields[]; nextCursor: string | null }> {
  const { rows } = await pool.query<ListedRow>(listStatement(tenantId, query, scanRows));
  const { items, end } = splitPage(rows, query.limit);
  return { jobs: items, nextCursor: end ? encodeCursor(end) : null };
}
