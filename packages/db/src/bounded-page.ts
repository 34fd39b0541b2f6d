import { InvalidCursorError, isUuid } from "@inferline/contracts";

// Keyset pages over a tenant's rows, newest first, whose filter is checked on a bounded scan:
// what GET /v1/jobs and GET /v1/batches share (see jobs/listing.ts and batch-listing.ts).

/** Where a page of rows ended, newest first (by createdAt, then id): pages continue strictly after it. */
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

/** A row of a bounded page: one of the page's (`hit`), or where its scan ended. */
type ListedPosition = ListPosition & { hit: boolean };

/**
 * A bounded page's rows split: the page (at most `limit`, newest first) and where the next one
 * goes on after (undefined when there are no more).
 */
export function splitPage<Row extends ListedPosition>(
  rows: Row[],
  limit: number,
): { items: Omit<Row, "hit">[]; end: ListPosition | undefined } {
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
