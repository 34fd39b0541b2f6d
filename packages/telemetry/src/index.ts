export { startTelemetry, tracing, tracingWanted, type TelemetryHandle } from "./telemetry.ts";
export {
  activeTraceParent,
  annotateActive,
  contextOf,
  contextWith,
  epochNow,
  failSpan,
  inSpan,
  NO_SPAN,
  SpanKind,
  SpanStatusCode,
  startSpan,
  traceParentOf,
  withActive,
  type Attributes,
  type Span,
  type SpanOptions,
} from "./spans.ts";
export { ATTR } from "./attributes.ts";
