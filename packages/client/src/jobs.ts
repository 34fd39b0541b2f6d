import { randomUUID } from "node:crypto";
import { longPoll } from "./long-poll.ts";
import type { Transport } from "./transport.ts";
import type {
  JobListFilter,
  JobPage,
  JobStatus,
  JobSubmissionInput,
  JobView,
  RequestOptions,
  SubmitOptions,
  WaitOptions,
} from "./types.ts";
import { pages } from "./pages.ts";

const TERMINAL: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "canceled", "expired"]);

/** Whether a job's status is final (it will not change again). */
export const isTerminalJob = (job: Pick<JobView, "status">): boolean => TERMINAL.has(job.status);

const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

/** `client.jobs`: single jobs. */
export class Jobs {
  constructor(private readonly transport: Transport) {}

  /**
   * Creates a job (202 queued, or 200 with the first job when its Idempotency-Key was used before
   * with the same body). Without a key one is generated, so every retry of this call names the
   * same job and a retried create never makes two.
   */
  create(body: JobSubmissionInput, options: SubmitOptions = {}): Promise<JobView> {
    return this.transport.json<JobView>({
      method: "POST",
      path: "/v1/jobs",
      json: body,
      headers: submitHeaders(options),
      options,
    });
  }

  /** @deprecated Use `create` (the name `batches.create` has too). */
  submit(body: JobSubmissionInput, options: SubmitOptions = {}): Promise<JobView> {
    return this.create(body, options);
  }

  get(id: string, options: RequestOptions = {}): Promise<JobView> {
    return this.transport.json<JobView>({ method: "GET", path: jobPath(id), options });
  }

  /** Long-polls until the job is terminal or `timeoutSeconds` passes (then returns it as it is). */
  wait(id: string, options: WaitOptions = {}): Promise<JobView> {
    return longPoll<JobView>(this.transport, jobPath(id), isTerminalJob, options);
  }

  /** Cancels a queued or running job (a terminal one answers 409: ConflictError). */
  cancel(id: string, options: RequestOptions = {}): Promise<JobView> {
    return this.transport.json<JobView>({ method: "POST", path: `${jobPath(id)}/cancel`, options });
  }

  /**
   * One page of `GET /v1/jobs` (newest first; with `batchId`, that batch's items). A page reads a
   * bounded part of the jobs, so with a status filter it may hold fewer than `limit`, even none,
   * while `nextCursor` is not null: only a null `nextCursor` means there are no more.
   */
  page(filter: JobListFilter & { cursor?: string } = {}, options: RequestOptions = {}): Promise<JobPage> {
    return this.transport.json<JobPage>({ method: "GET", path: "/v1/jobs", query: { ...filter }, options });
  }

  /** Every job the filter matches, page after page (short and empty pages included) until `nextCursor` is null, fetched as the loop asks for them. */
  list(filter: JobListFilter = {}, options: RequestOptions = {}): AsyncGenerator<JobView> {
    return pages(
      (cursor) => this.page({ ...filter, cursor }, options),
      (page) => page.jobs,
    );
  }
}

/** Idempotency-Key (the caller's, else a fresh UUID) and Cancel-After. */
export function submitHeaders(options: SubmitOptions, generateKey = true): Record<string, string> {
  const headers: Record<string, string> = {};
  const key = options.idempotencyKey ?? (generateKey ? randomUUID() : undefined);
  if (key !== undefined) headers["idempotency-key"] = key;
  if (options.cancelAfter !== undefined) headers["cancel-after"] = String(options.cancelAfter);
  return headers;
}
