import type pg from "pg";
import type { JobStatus } from "@inferline/contracts";
import { itemStatus } from "./arrays.ts";

/**
 * Consecutive items of one chunk as the results stream reads them (see resultPages):
 * index-aligned arrays of `size` items from `firstIndex`.
 */
export interface ResultPage {
  firstIndex: number;
  size: number;
  customIds: Array<string | null>;
  /** Each item's status as the API shows it: its own once terminal, else its chunk's. */
  statuses: JobStatus[];
  /** Which items were answered from the result cache. */
  cached: boolean[];
  /** Each item's result and error as the JSON text stored ("null" or null for none). */
  results: Array<string | null>;
  errors: Array<string | null>;
}

/** One item of a results page, with its own elements of its chunk's arrays. */
interface ResultItemRow {
  customId: string | null;
  status: string;
  /** Whether its chunk has started (an item not terminal then shows `running`). */
  started: boolean;
  cached: boolean;
  result: string | null;
  error: string | null;
}

/**
 * A batch's items in submission order, a page at a time: consecutive items of one chunk whose
 * result and error JSON take at most `pageBytes` (a page holds at least one item, however
 * large), so a stream holds one page whatever the chunks hold. PostgreSQL extracts the elements
 * (a chunk of large results is parsed there once per page) and gives each item's result and
 * error as the JSON text stored: the API splices them into its lines without parsing them.
 */
export async function* resultPages(pool: pg.Pool, batchId: string, pageBytes: number): AsyncGenerator<ResultPage> {
  let from = 0;
  for (;;) {
    const page = await resultPage(pool, batchId, from, pageBytes);
    if (!page) return;
    yield page;
    from = page.firstIndex + page.size;
  }
}

/** The page of items from index `from` (see resultPages), or null past the last item. */
async function resultPage(pool: pg.Pool, batchId: string, from: number, pageBytes: number): Promise<ResultPage | null> {
  const { rows } = await pool.query<ResultItemRow>(
    `with chunk as (
       select "firstIndex", size, "customIds", statuses, cached, "startedAt", results, errors from batch_chunks
       where "batchId" = $1 and "firstIndex" <= $2 order by "firstIndex" desc limit 1),
     items as (
       select c."firstIndex" + x.n - 1 as index, c."customIds"[x.n] as "customId", c.statuses[x.n] as status,
         c."startedAt" is not null as started, coalesce(c.cached[x.n], false) as cached, x.r::text as result, x.e::text as error
       from chunk c cross join lateral
         rows from (generate_series(1, c.size), json_array_elements(c.results), json_array_elements(c.errors)) as x(n, r, e)
       where x.n > $2 - c."firstIndex")
     select "customId", status, started, cached, result, error from (
       select i.*, row_number() over w as k,
         sum(coalesce(octet_length(i.result), 0) + coalesce(octet_length(i.error), 0)) over w as upto
       from items i window w as (order by i.index)) s
     where k = 1 or upto <= $3 order by index`,
    [batchId, from, pageBytes],
  );
  if (rows.length === 0) return null;
  return {
    firstIndex: from,
    size: rows.length,
    customIds: rows.map((r) => r.customId),
    statuses: rows.map((r) => itemStatus(r.status, r.started)),
    cached: rows.map((r) => r.cached),
    results: rows.map((r) => r.result),
    errors: rows.map((r) => r.error),
  };
}
