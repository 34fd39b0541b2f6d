import type pg from "pg";
import { InvalidCursorError, isUuid, type JobListQuery } from "@inferline/contracts";

/**
 * The most of a tenant's jobs one page of GET /v1/jobs reads to check a status filter. No index
 * holds `status` (job updates then stay HOT; see schema.prisma), so the status is checked on the
 * rows the tenant's index (or its model's) yields: a page reads at most this many after its
 * cursor and, when they hold fewer than `limit` matches, is short (even empty) with a cursor that
 * goes on after the last job it read. At 10,000,000 jobs of one tenant (bench/list-at-scale.ts,
 * table in the OS cache) the costliest page, a status absent from a model whose jobs are spread
 * thin over the table, took under 40 ms, against the API's 1.5 s statement timeout: the margin is
 * for pages read from disk. The work to walk a filter to its end does not depend on this bound,
 * only how it is cut into requests (1,001 pages, 8.6 s, for a status absent from 10M jobs).
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

/** The columns of a job that its view shows (see toJobView), as the list statement returns them. */
const LISTED_COLUMNS = `j.status, j.model, j.version, j.priority, j.attempts, j.metadata, j."startedAt", j."completedAt",
  j.result, j.cached, j."errorCode", j."errorMessage"`;

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

/** A row of a bounded page: one of the page's (`hit`), or where its scan ended. */
type ListedPosition = ListPosition & { hit: boolean };

/**
 * A bounded page's rows split: the page (at most `limit`, newest first) and where the next one
 * goes on after (undefined when there are no more).
 */
export function splitPage<Row extends ListedPosition>(rows: Row[], limit: number): { items: Omit<Row, "hit">[]; end: ListPosition | undefined } {
  const items: Omit<Row, "hit">[] = [];
  let end: ListPosition | undefined;
  for (const { hit, ...row } of rows) {
    if (hit) items.push(row);
    else end = row;
  }
  if (items.length > limit) {
    items.length = limit;
    end = items[items.length - 1];
  }
  return { items, end };
}

/** Adds a statement parameter of a type and answers its placeholder (`$3::uuid`). */
export type AddParam = (value: unknown, type: string) => string;

/** The keyset condition of rows strictly after a cursor, newest first. */
export function afterCursor(cursor: string, param: AddParam): string {
  const after = decodeCursor(cursor);
  return `("createdAt", id) < (${param(after.createdAt, "timestamptz")}, ${param(after.id, "uuid")})`;
}

/** What boundedPage scans and how it filters. */
export interface BoundedPageSpec {
  table: string;
  /** Conditions an index answers (tenant, cursor): they bound the scan. */
  range: string[];
  /** Columns or expressions (`x as name`) the filter reads, besides id and "createdAt". */
  scanned: string;
  /** The filter over what the scan yields (`where …`), or "" for none. */
  match: string;
  scanRows: number;
  limit: number;
  param: AddParam;
}

/**
 * A `with page as (…)` clause: the page's rows (`hit`, newest first, at most `limit + 1`) and,
 * when the scan ran out, the last row it read (not `hit`), where the next page goes on.
 *
 * The inner scan reads the rows in range after the cursor, newest first, at most `scanRows` of
 * them; the filter is checked on what it yields, and the scan stops as soon as `limit + 1` match.
 * Only when it ran out does the second branch run, reading the same index entries again
 * (index-only once vacuum has marked the pages) to find where it ended. The SQL is put together
 * from fixed parts, so each filter gets its own plan: a parameter that may be null would leave a
 * generic plan without the cursor as an index condition.
 */
export function boundedPage({ table, range, scanned, match, scanRows, limit, param }: BoundedPageSpec): string {
  // At least one more than a page, so that a full page knows whether more follow.
  const [scan, take] = [param(Math.max(scanRows, limit + 1), "int"), param(limit + 1, "int")];
  const inRange = `from ${table} where ${range.join(" and ")} order by "createdAt" desc, id desc`;
  return `with page as (
        (select id, "createdAt", true as hit from (select id, "createdAt", ${scanned} ${inRange} limit ${scan}) scanned
         ${match} order by "createdAt" desc, id desc limit ${take})
        union all
        (select id, "createdAt", false ${inRange} offset ${scan} - 1 limit 1)
        limit ${take})`;
}
