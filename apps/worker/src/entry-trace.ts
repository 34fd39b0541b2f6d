import {
  ATTR,
  contextWith,
  epochNow,
  failSpan,
  SpanKind,
  startSpan,
  tracing,
  type Attributes,
  type Span,
} from "@inferline/telemetry";
import type { ItemOutcome } from "@inferline/inference";

/** What one queue entry works on, each in the trace its submit stored: a job, or a batch chunk. */
export interface TracedSubject {
  /** The job's id or the chunk's id. */
  key: string;
  traceParent: string | null;
  attributes: Attributes;
}

/**
 * The spans of one queue entry (OpenTelemetry). An entry carries many jobs, each submitted in a
 * trace of its own: every job gets its own `process` span (a child of the submit's span, stored
 * as its traceparent) with `claim`, `inference` and `result write` children, so each job's trace
 * is whole. Created only while tracing is on (see begin); the processor's calls are `trace?.x()`.
 * Attributes are ids, sizes and outcomes: never inputs or results.
 */
export class EntryTrace {
  /** Each subject's process span, and the attributes every span of it carries. */
  private readonly processes = new Map<string, { span: Span; attributes: Attributes }>();
  /** When the claim statement started (the entry's start until `claiming` says otherwise). */
  private claimStartedAt: number;

  private constructor(
    private readonly queue: string,
    private readonly startedAt: number,
  ) {
    this.claimStartedAt = startedAt;
  }

  /** Undefined while tracing is off: then the processor pays one branch per step. */
  static begin(queue: string): EntryTrace | undefined {
    return tracing.enabled ? new EntryTrace(queue, epochNow()) : undefined;
  }

  /** The claim starts now (after a wait at the ExclusiveGate, which the process span covers and the claim span does not). */
  claiming(): void {
    this.claimStartedAt = epochNow();
  }

  /** After the claim (which read the traceparents): each subject's `process` span and its `claim` child, both from `begin`. */
  claimed(subjects: TracedSubject[]): void {
    const batchSize = subjects.length;
    for (const s of subjects) {
      const attributes = {
        ...s.attributes,
        [ATTR.batchSize]: batchSize,
        [ATTR.messagingSystem]: "bullmq",
        [ATTR.messagingDestination]: this.queue,
        [ATTR.messagingOperation]: "process",
      };
      const consumer = startSpan(`process ${this.queue}`, {
        kind: SpanKind.CONSUMER,
        parent: s.traceParent,
        attributes,
        startTime: this.startedAt,
      });
      this.processes.set(s.key, { span: consumer, attributes: s.attributes });
      startSpan("claim", {
        parent: contextWith(consumer),
        attributes: s.attributes,
        startTime: this.claimStartedAt,
      }).end();
    }
  }

  /** A child of `key`'s process span with the subject's attributes (and `extra`), started now (or at `startTime`). */
  child(key: string, name: string, extra?: Attributes, startTime?: number): Span | undefined {
    const subject = this.processes.get(key);
    if (!subject) return undefined;
    return startSpan(name, {
      parent: contextWith(subject.span),
      attributes: extra ? { ...subject.attributes, ...extra } : subject.attributes,
      startTime,
    });
  }

  /** Starts the inference span of `key` (the batcher's wait and the session run that served it). */
  inference(key: string, extra?: Attributes): Span | undefined {
    return this.child(key, "inference", extra);
  }

  /** Ends an inference span with its outcome (a failure's code, never its message). */
  static inferred(span: Span | undefined, outcome: ItemOutcome): void {
    if (!span) return;
    span.setAttribute(ATTR.outcome, outcome.ok ? "succeeded" : outcome.retriable ? "retry" : "failed");
    if (!outcome.ok) failSpan(span, undefined, outcome.code);
    span.end();
  }

  /** One `result write` span for each of `keys`: the statement that wrote them together, from `startedAt` to now. */
  written(keys: readonly string[], startedAt: number): void {
    for (const key of keys) this.child(key, "result write", undefined, startedAt)?.end();
  }

  /** Ends every process span; an error (the entry will be retried, or gave up) marks them failed. */
  end(err?: unknown): void {
    for (const { span } of this.processes.values()) {
      if (err !== undefined) failSpan(span, err);
      span.end();
    }
    this.processes.clear();
  }
}
