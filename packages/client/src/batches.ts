import { submitHeaders } from "./jobs.ts";
import { longPoll } from "./long-poll.ts";
import { ndjsonLines, ndjsonStream, ndjsonText } from "./ndjson.ts";
import type { Query, RequestSpec, Transport } from "./transport.ts";
import { pages } from "./pages.ts";
import type {
  BatchHeaderInput,
  BatchItemInput,
  BatchListFilter,
  BatchPage,
  BatchResultLine,
  BatchView,
  RequestOptions,
  SubmitOptions,
  WaitOptions,
} from "./types.ts";

const batchPath = (id: string) => `/v1/batches/${encodeURIComponent(id)}`;

/** Whether a batch is finished: every item terminal, or the batch canceled. */
export const isFinishedBatch = (batch: Pick<BatchView, "status">): boolean =>
  batch.status === "completed" || batch.status === "canceled";

/** `client.batches`: many items of one model, results read back in submission order. */
export class Batches {
  constructor(private readonly transport: Transport) {}

  /**
   * Creates a batch. Items go as NDJSON, the header as the query string (what POST /v1/batches
   * takes for NDJSON), unless the header holds what a query cannot (outputs, metadata, webhook
   * events): then an array goes as one JSON body, and a stream is refused with a TypeError.
   *
   * An array is replayable: it gets a generated Idempotency-Key (unless given one) and is retried
   * like a submit. An iterable or async iterable is streamed as it is read and sent once: a
   * network error, 429 or 503 throws (pass `idempotencyKey` and call again with the same items to
   * get the first batch back when it was created after all).
   */
  async create(
    items: readonly BatchItemInput[] | Iterable<BatchItemInput> | AsyncIterable<BatchItemInput>,
    header: BatchHeaderInput,
    options: SubmitOptions = {},
  ): Promise<BatchView> {
    const replayable = Array.isArray(items);
    const spec: RequestSpec = {
      method: "POST",
      path: "/v1/batches",
      headers: submitHeaders(options, replayable),
      options,
    };
    const query = headerQuery(header);
    if (!query) {
      if (!replayable)
        throw new TypeError(
          "a streamed batch takes its settings from the query string, which cannot carry outputs, metadata or webhook events: pass the items as an array",
        );
      return this.transport.json<BatchView>({ ...spec, json: { ...header, items } });
    }
    const body = replayable ? ndjsonText(items as readonly BatchItemInput[]) : ndjsonStream(items);
    return this.transport.json<BatchView>({ ...spec, query, body, contentType: "application/x-ndjson" });
  }

  get(id: string, options: RequestOptions = {}): Promise<BatchView> {
    return this.transport.json<BatchView>({ method: "GET", path: batchPath(id), options });
  }

  /**
   * One page of `GET /v1/batches`, newest first. A page reads a bounded part of the batches, so
   * with a filter it may hold fewer than `limit`, even none, while `nextCursor` is not null: only
   * a null `nextCursor` means there are no more.
   */
  page(filter: BatchListFilter & { cursor?: string } = {}, options: RequestOptions = {}): Promise<BatchPage> {
    return this.transport.json<BatchPage>({ method: "GET", path: "/v1/batches", query: { ...filter }, options });
  }

  /** Every batch the filter matches, newest first, page after page until `nextCursor` is null, fetched as the loop asks for them. */
  list(filter: BatchListFilter = {}, options: RequestOptions = {}): AsyncGenerator<BatchView> {
    return pages(
      (cursor) => this.page({ ...filter, cursor }, options),
      (page) => page.batches,
    );
  }

  /** Long-polls until the batch is completed or canceled, or `timeoutSeconds` passes (then returns it as it is). */
  wait(id: string, options: WaitOptions = {}): Promise<BatchView> {
    return longPoll<BatchView>(this.transport, batchPath(id), isFinishedBatch, options);
  }

  /**
   * The batch's result lines in submission order (index 0 first), parsed as they stream in: a
   * batch of any size is never held whole. Stopping the loop early closes the stream.
   */
  async *results(id: string, options: RequestOptions = {}): AsyncGenerator<BatchResultLine> {
    const res = await this.transport.response({ method: "GET", path: `${batchPath(id)}/results`, options });
    if (!res.body) return;
    yield* ndjsonLines<BatchResultLine>(res.body);
  }

  /** Cancels every item not yet terminal (a finished batch answers 409: ConflictError). */
  cancel(id: string, options: RequestOptions = {}): Promise<BatchView> {
    return this.transport.json<BatchView>({ method: "POST", path: `${batchPath(id)}/cancel`, options });
  }
}

/** The header as NDJSON query parameters, or undefined when part of it cannot be one. */
function headerQuery(header: BatchHeaderInput): Query | undefined {
  const { model, version, priority, maxQueueSeconds, cache, webhook, outputs, metadata } = header;
  if (outputs?.length || Object.keys(metadata ?? {}).length || webhook?.events) return undefined;
  return { model, version, priority, maxQueueSeconds, cache, webhookUrl: webhook?.url };
}
