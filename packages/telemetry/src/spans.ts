import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TimeInput,
} from "@opentelemetry/api";
import { tracing } from "./telemetry.ts";

/** The tracer every Inferline span comes from (the no-op one while tracing is off). */
const tracer = () => trace.getTracer("inferline");

/** A span that records nothing: what the helpers hand out while tracing is off. */
export const NO_SPAN: Span = trace.wrapSpanContext({
  traceId: "00000000000000000000000000000000",
  spanId: "0000000000000000",
  traceFlags: 0,
});

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent: a W3C traceparent string (as stored with a job), a context, or absent for the active context. */
  parent?: string | null | Context;
  links?: Link[];
  startTime?: TimeInput;
}

/** The context a W3C `traceparent` (and `tracestate`) continues; the root context when there is none or it is malformed. */
export function contextOf(traceParent: string | null | undefined, traceState?: string | null): Context {
  if (!traceParent) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent: traceParent };
  if (traceState) carrier.tracestate = traceState;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** The context whose active span is `span`: a parent for spans started outside its callback. */
export function contextWith(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}

/** Now, as epoch milliseconds with sub-millisecond precision (a span's `startTime` taken before its parent was known). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts a span (not made active); NO_SPAN while tracing is off. End it with `endSpan` or `span.end()`. */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  if (!tracing.enabled) return NO_SPAN;
  const parent =
    typeof options.parent === "string" || options.parent === null
      ? contextOf(options.parent)
      : (options.parent ?? context.active());
  return tracer().startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      attributes: options.attributes,
      links: options.links,
      startTime: options.startTime,
    },
    parent,
  );
}

/** Runs `fn` with `span` active (spans started inside become its children). */
export function withActive<T>(span: Span, fn: () => T): T {
  if (span === NO_SPAN) return fn();
  return context.with(trace.setSpan(context.active(), span), fn);
}

/**
 * Runs `fn` in a span of its own, active meanwhile, and ends it: an error thrown marks the span
 * failed (its class only: messages may quote inputs) and is rethrown. Off, only `fn` runs.
 */
export async function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!tracing.enabled) return fn(NO_SPAN);
  const span = startSpan(name, options);
  try {
    return await withActive(span, () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error's class and code, never its message (which may quote inputs or URLs). */
export function failSpan(span: Span, err: unknown, code?: string): void {
  if (span === NO_SPAN) return;
  const errCode = (err as { code?: unknown } | undefined)?.code;
  const type =
    code ?? (typeof errCode === "string" ? errCode : undefined) ?? (err instanceof Error ? err.name : "error");
  span.setAttribute("error.type", type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** The W3C `traceparent` of a span (what is stored with a job); null when it is NO_SPAN or invalid. */
export function traceParentOf(span: Span): string | null {
  if (span === NO_SPAN) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier.traceparent ?? null;
}

/** Adds attributes to the active span (the submit's server span: its job's id, model and version); off, one branch. */
export function annotateActive(attributes: Attributes): void {
  if (!tracing.enabled) return;
  trace.getSpan(context.active())?.setAttributes(attributes);
}

/** The `traceparent` of the active span (the submit's server span); null while tracing is off or outside any span. */
export function activeTraceParent(): string | null {
  if (!tracing.enabled) return null;
  const span = trace.getSpan(context.active());
  return span ? traceParentOf(span) : null;
}

export { SpanKind, SpanStatusCode, type Attributes, type Span };
