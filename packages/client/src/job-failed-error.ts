import type { JobView } from "./types.ts";

/**
 * A job that `client.run()` submitted did not succeed: it failed (the model refused its inputs, a
 * run crashed or timed out every attempt), was canceled (by `run()` at its deadline or on abort,
 * or by anyone else) or expired before a worker took it. `job` is its last view; `code` its
 * error's code (`inference_failed`, `deadline_exceeded`, `canceled`…).
 */
export class JobFailedError extends Error {
  override readonly name = "JobFailedError";
  readonly job: JobView;
  readonly code: string;

  constructor(job: JobView, reason?: string) {
    const code = job.error?.code ?? job.status;
    super(`job ${job.id} ${job.status}${reason ? ` (${reason})` : ""}: ${job.error?.message ?? code}`);
    this.job = job;
    this.code = code;
  }
}
