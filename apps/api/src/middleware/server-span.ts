import type { RequestHandler } from "express";
import { ATTR, contextOf, failSpan, SpanKind, startSpan, tracing, withActive } from "@inferline/telemetry";

/**
 * A server span around a submit route (OpenTelemetry), continuing the caller's `traceparent`
 * when it sent one. It is active while the handler runs, so the job or batch it stores carries
 * its traceparent (see activeTraceParent) and the worker's and webhooks' spans join its trace.
 * Mounted after body parsing: the parser's stream callbacks would lose the active context.
 * Attributes are the method, route and status: never the body, the query string or the key.
 * Off, one branch.
 */
export function serverSpan(route: string): RequestHandler {
  return (req, res, next) => {
    if (!tracing.enabled) return next();
    const attributes = { [ATTR.httpMethod]: req.method, [ATTR.httpRoute]: route };
    const span = startSpan(`${req.method} ${route}`, {
      kind: SpanKind.SERVER,
      parent: contextOf(req.header("traceparent"), req.header("tracestate")),
      attributes,
    });
    res.once("close", () => {
      span.setAttribute(ATTR.httpStatus, res.statusCode);
      if (res.statusCode >= 500) failSpan(span, undefined, String(res.statusCode));
      span.end();
    });
    withActive(span, next);
  };
}
