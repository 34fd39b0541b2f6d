import type pg from "pg";
import { InvalidCursorError, isUuid, type JobListQuery } from "@inferline/contracts";
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

/** Where a page of a tenant's jobs ended, newest first: pages continue strictly after it. */
export interface ListPosition {
  createdAt: Date;
  id: string;
}

export function encodeCursor({ createdAt, id }: ListPosition): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString("base64url");
}

export function decodeCursor(cursor: string): ListPosition {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const createdAt = new Date(at);
    // A forged id would otherwise reach the uuid column and fail the statement.
    if (Number.isNaN(createdAt.getTime()) || typeof id !== "string" || !isUuid(id)) throw new Error("bad cursor");
    return { createdAt, id };
  } catch {
    throw new InvalidCursorError();
  }
}

/** The columns of a job that its view reads (see toJobView) but those the page has, as the list statement returns them. */
const LISTED_COLUMNS = columnList(
  VIEW_FIELDS.filter((f) => f !== "id" && f !== "createdAt"),
  "j.",
);

/**
 * One page of a tenant's jobs: rows with `hit` are the page's jobs, newest first (at most
 * `limit + 1`, the last telling that more follow); a row without is the last job the scan read,
 * present only when the scan read all `scanRows` it may and found at most `limit` matches.
 *
 * The inner scan reads the tenant's jobs (of the model: its own index) after the cursor, newest
 * first, at most `scanRows` of them; the status is checked on what it yields, and the scan stops
 * as soon as `limit + 1` match. Only when it ran out does the second branch run, reading the
 * same index entries again (index-only once vacuum has marked the pages) to find where it ended.
 * The SQL is put together from fixed parts, so each filter gets its own plan: a parameter that
 * may be null would leave a generic plan without the cursor as an index condition.
 */
export function listStatement(tenantId: string, query: JobListQuery, scanRows: number): pg.QueryConfig {
  const values: unknown[] = [tenantId];
  const param = (value: unknown, type: string) => `$${values.push(value)}::${type}`;
  const range = [`"tenantId" = $1::uuid`];
  if (query.model !== undefined) range.push(`model = ${param(query.model, "text")}`);
  if (query.cursor !== undefined) {
    const after = decodeCursor(query.cursor);
    range.push(`("createdAt", id) < (${param(after.createdAt, "timestamptz")}, ${param(after.id, "uuid")})`);
  }
  const match = query.status === undefined ? "" : `where status = ${param(query.status, `"JobStatus"`)}`;
  // At least one more than a page, so that a full page knows whether more follow.
  const [scan, take] = [param(Math.max(scanRows, query.limit + 1), "int"), param(query.limit + 1, "int")];
  const inRange = `from jobs where ${range.join(" and ")} order by "createdAt" desc, id desc`;
  return {
    text: `with page as (
        (select id, "createdAt", true as hit from (select id, "createdAt", status ${inRange} limit ${scan}) scanned
         ${match} order by "createdAt" desc, id desc limit ${take})
        union all
        (select id, "createdAt", false ${inRange} offset ${scan} - 1 limit 1)
        limit ${take})
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
export async function listJobs(pool: pg.Pool, tenantId: string, query: JobListQuery, scanRows: number): Promise<{ jobs: JobViewFields[]; nextCursor: string | null }> {
  const { rows } = await pool.query<ListedRow>(listStatement(tenantId, query, scanRows));
  const jobs: JobViewFields[] = [];
  let end: ListPosition | undefined;
  for (const { hit, ...row } of rows) {
    if (hit) jobs.push(row);
    else end = row;
  }
  if (jobs.length > query.limit) {
    jobs.length = query.limit;
    end = jobs[jobs.length - 1];
  }
  return { jobs, nextCursor: end ? encodeCursor(end) : null };
}
