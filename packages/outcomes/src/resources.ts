import type { JobStatus } from "@inferline/contracts";
import type {
  BatchChunkStore,
  BatchStore,
  Database,
  EmptiedEntry,
  EntryCountStore,
  FinishedJob,
  JobStore,
  RecordedEvent,
  ReleasedFollowers,
  WebhookEventRecorder,
} from "@inferline/db";
import type { Dispatcher, FinishedNotifier } from "@inferline/queue";
import type { WebhookQueue } from "@inferline/webhooks";

/** Where a refused notification or enqueue is reported (a pino logger fits). */
export interface OutcomeLogger {
  warn(obj: object, msg?: string): void;
}

/** The shared resources every outcome runs on, each narrowed to what outcomes touch. */
export interface OutcomeResources {
  db: Pick<Database, "transaction">;
  jobs: Pick<
    JobStore,
    | "finish"
    | "finishStandalone"
    | "finishUnclaimed"
    | "cancel"
    | "claim"
    | "endOverdue"
    | "expireOverdue"
    | "cancelOverdue"
    | "insertAnswered"
    | "insertFollowers"
    | "finishFollowers"
    | "releaseFollowers"
  >;
  chunks: Pick<BatchChunkStore, "finish" | "cancelItem" | "claim" | "overdue" | "expire">;
  batches: Pick<BatchStore, "cancel" | "eventSubject" | "dueForCancel">;
  /** Queue entries' counts: jobs that end without a run come off them in the transaction that ends them. */
  dispatches: EntryCountStore;
  events: WebhookEventRecorder;
  /** Wakes long-polls: one message per write. */
  notifier: Pick<FinishedNotifier, "publish">;
  /** Enqueues webhook deliveries. */
  deliveries: Pick<WebhookQueue, "enqueue">;
  /**
   * Adds queue entries: for the followers of a single flight whose leader was canceled or expired
   * (released onto entries of their own). Without it their rows wait for the reconciler. Also
   * removes the waiting entries whose jobs all ended before a worker took them.
   */
  entries?: Pick<Dispatcher, "enqueue" | "remove">;
  logger: OutcomeLogger;
}

export interface OutcomeHooks {
  /** Called after each committed result write with the jobs it finished (tests hang here). */
  onFinished?: (jobs: FinishedJob[]) => Promise<void>;
  /**
   * Called after each commit that made jobs or batch items terminal (results, retries exhausted,
   * expiries at claim and by the sweep, cancels), counted by kind, model and status: what the
   * workers' finished counters count. Batch items that a chunk's run finished are not reported
   * here (finishChunk does not know the chunk's model; its caller does).
   */
  ended?: (work: EndedWork[]) => void;
}

/** Jobs or batch items of one model that one commit moved to one terminal status. */
export interface EndedWork {
  kind: "job" | "item";
  model: string;
  status: JobStatus;
  count: number;
}

/** One page of a deadline sweep: rows it took (a full page means there may be more) and jobs or items it ended. */
export interface SweptPage {
  due: number;
  ended: number;
}

/** What a committed write leaves to do: the channels to wake (job ids, or a batch id), the events to deliver and the followers to enqueue. */
export interface Committed {
  channels: string[];
  /** Views of some of the channels' jobs, by id, for the message (see FinishedNotifier.publish). */
  views?: ReadonlyMap<string, string>;
  events: RecordedEvent[];
  released?: ReleasedFollowers[];
  /** Queue entries whose rows the commit deleted (all their jobs ended): those still waiting are removed. */
  emptied?: EmptiedEntry[];
  /** What the commit ended, for the `ended` hook. */
  ended?: EndedWork[];
}

/** What a group of job results recorded with them: their events, and the followers released onto entries of their own. */
export interface JobsRecorded {
  events: RecordedEvent[];
  released: ReleasedFollowers[];
}

export const NOTHING_RECORDED: JobsRecorded = { events: [], released: [] };
