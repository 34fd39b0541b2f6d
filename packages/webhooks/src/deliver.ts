import { Agent, fetch, type Response } from "undici";
import { toStorableText } from "@inferline/contracts";
import type { ClaimedWebhookEvent, WebhookDeliveryStore } from "@inferline/db";
import { ATTR, failSpan, SpanKind, startSpan, traceParentOf, tracing, type Span } from "@inferline/telemetry";
import { nextRetryDelay, parseRetryAfter, DEFAULT_RETRY_SCHEDULE_MS } from "./schedule.ts";
import { webhookHeaders } from "./signing.ts";
import { assertPublicTarget, guardedLookup, type HostLookup } from "./ssrf.ts";

export interface DeliveryOptions {
  /** How long one attempt may take, headers and the bounded body read included. Default 15000. */
  timeoutMs?: number;
  /**
   * How long opening the connection (DNS, TCP, TLS) may take, in ms; kept below timeoutMs so a
   * host that drops SYNs frees its slot early. Default 5000.
   */
  connectTimeoutMs?: number;
  /** Largest body sent; a larger event is recorded as failed, never sent. Default 256 KiB. */
  maxBodyBytes?: number;
  /** Most bytes of the receiver's answer read (and recorded). Default 4096. */
  maxResponseBytes?: number;
  /** Delay before each attempt (see DEFAULT_RETRY_SCHEDULE_MS). */
  schedule?: readonly number[];
  /** Deliver to loopback/private addresses (tests, single-host setups). Default false. */
  allowPrivate?: boolean;
  lookup?: HostLookup;
  /** How long the DNS check before each attempt may take, in ms. Default 2000 (DEFAULT_LOOKUP_TIMEOUT_MS). */
  lookupTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 4096;

const agents = new Map<string, Agent>();

/**
 * The connection pool for deliveries: `guarded` checks every resolved address again when the
 * socket connects; the open one (the operator allowed private targets) does not. One pool per
 * kind and connect timeout, shared by every delivery of the process.
 */
function agentFor(guarded: boolean, connectTimeoutMs: number): Agent {
  const key = `${guarded}:${connectTimeoutMs}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent({
      keepAliveTimeout: 4_000,
      connect: guarded ? { lookup: guardedLookup, timeout: connectTimeoutMs } : { timeout: connectTimeoutMs },
    });
    agents.set(key, agent);
  }
  return agent;
}

export type DeliveryOutcome =
  /** The receiver answered 2xx. */
  | "delivered"
  /** The receiver answered 410 Gone: no more attempts. */
  | "gone"
  /** Failed; another attempt is scheduled in `retryInMs`. */
  | "retry"
  /** Failed for good: schedule exhausted, or the body is over the limit. */
  | "failed"
  /** A manual redelivery that failed (it schedules nothing and leaves the event's status). */
  | "manual_failed"
  /** Nothing to do: unknown event, or already settled. */
  | "skipped";

export interface DeliveryResult {
  outcome: DeliveryOutcome;
  attempt?: number;
  statusCode?: number;
  error?: string;
  /** How long the request took, when one was sent. */
  latencyMs?: number;
  retryInMs?: number;
  /** The SSRF guard refused the target (before sending, or when the socket connected): nothing reached it. */
  refused?: boolean;
}

/**
 * One delivery attempt of one event: claims an attempt number, checks the target again (DNS may
 * have changed since submit), signs with the tenant's secret (and each previous one still in its
 * rotation window), POSTs without following redirects under a timeout, reads at most a few KiB of
 * the answer, and records the attempt together with the event's new status in one statement.
 * Never throws for a receiver's failure: the result says whether and when to retry.
 */
export async function deliverEvent(
  store: WebhookDeliveryStore,
  eventId: string,
  options: DeliveryOptions = {},
  mode: { manual?: boolean } = {},
): Promise<DeliveryResult> {
  const manual = mode.manual ?? false;
  const event = await store.claimAttempt(eventId, manual);
  if (!event) return { outcome: "skipped" };

  const span = tracing.enabled ? attemptSpan(event) : undefined;
  const attempt = await attemptOnce(event, options, span ? traceParentOf(span) : null);
  const schedule = options.schedule ?? DEFAULT_RETRY_SCHEDULE_MS;
  let outcome: DeliveryOutcome;
  let retryInMs: number | undefined;
  if (attempt.ok) outcome = "delivered";
  else if (attempt.statusCode === 410) outcome = "gone";
  else if (manual) outcome = "manual_failed";
  else if (!attempt.retriable) outcome = "failed";
  else {
    const delay = nextRetryDelay(schedule, event.automaticAttempts, attempt.retryAfterMs);
    if (delay === null) outcome = "failed";
    else {
      outcome = "retry";
      retryInMs = delay;
    }
  }
  const nextRetryAt = retryInMs === undefined ? null : new Date(Date.now() + retryInMs);
  const status = outcome === "retry" ? "pending" : outcome === "manual_failed" ? null : outcome;
  await store.recordAttempt({
    eventId: event.id,
    jobId: event.jobId,
    attempt: event.attempts,
    url: event.url,
    attemptedAt: attempt.at,
    statusCode: attempt.statusCode ?? null,
    latencyMs: attempt.latencyMs ?? null,
    // Whatever bytes the receiver sent (NUL, invalid UTF-8) are stored: an attempt that could not
    // be recorded would leave its event pending, and a 2xx would be sent again and again.
    error: attempt.error === undefined ? null : toStorableText(attempt.error),
    responseBody: attempt.responseBody === undefined ? null : toStorableText(attempt.responseBody),
    nextRetryAt,
    status,
    reschedule: !manual,
  });
  if (span) endAttemptSpan(span, attempt, outcome);
  return {
    outcome,
    attempt: event.attempts,
    statusCode: attempt.statusCode,
    error: attempt.error,
    latencyMs: attempt.latencyMs,
    retryInMs,
    refused: attempt.refused,
  };
}

interface Attempt {
  at: Date;
  ok: boolean;
  retriable: boolean;
  statusCode?: number;
  latencyMs?: number;
  error?: string;
  responseBody?: string;
  retryAfterMs?: number;
  refused?: boolean;
}

/**
 * The attempt's span, in the trace of its job or batch (the traceparent stored at submit). Its
 * attributes name the event, never its URL (query strings carry tokens), body or secrets.
 */
function attemptSpan(event: ClaimedWebhookEvent): Span {
  const attributes: Record<string, string | number> = {
    [ATTR.webhookEventId]: event.id,
    [ATTR.webhookEventType]: event.type,
    [ATTR.attempt]: event.attempts,
    [ATTR.httpMethod]: "POST",
  };
  if (event.jobId) attributes[ATTR.jobId] = event.jobId;
  if (event.batchId) attributes[ATTR.batchId] = event.batchId;
  const host = hostOf(event.url);
  if (host) attributes[ATTR.serverAddress] = host;
  return startSpan("webhook attempt", { kind: SpanKind.CLIENT, parent: event.traceParent, attributes });
}

function endAttemptSpan(span: Span, attempt: Attempt, outcome: DeliveryOutcome): void {
  span.setAttribute(ATTR.outcome, outcome);
  if (attempt.statusCode !== undefined) span.setAttribute(ATTR.httpStatus, attempt.statusCode);
  if (!attempt.ok)
    failSpan(
      span,
      undefined,
      attempt.refused ? "refused" : attempt.statusCode !== undefined ? String(attempt.statusCode) : "no_answer",
    );
  span.end();
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

/** `traceParent`: sent as the `traceparent` header, so the receiver can continue the job's trace. */
async function attemptOnce(
  event: ClaimedWebhookEvent,
  options: DeliveryOptions,
  traceParent: string | null,
): Promise<Attempt> {
  const at = new Date();
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const size = Buffer.byteLength(event.body);
  if (size > maxBody)
    return {
      at,
      ok: false,
      retriable: false,
      error: `payload of ${size} bytes exceeds the limit of ${maxBody} bytes; not sent`,
    };
  try {
    await assertPublicTarget(event.url, {
      allowPrivate: options.allowPrivate,
      lookup: options.lookup,
      lookupTimeoutMs: options.lookupTimeoutMs,
    });
  } catch (err) {
    // Retried on the schedule: DNS (or the operator's allow switch) may change.
    return { at, ok: false, retriable: true, refused: true, error: `refused: ${(err as Error).message}` };
  }
  const secrets = [event.secret, ...event.previousSecrets];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const connectTimeoutMs = Math.min(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, timeoutMs);
  const signal = AbortSignal.timeout(timeoutMs);
  const started = performance.now();
  let statusCode: number | undefined;
  try {
    // undici's fetch (Node's own fetch, as a package) so that the connection can take a checked lookup.
    const res = await fetch(event.url, {
      method: "POST",
      headers: withTraceParent(webhookHeaders(secrets, event.id, new Date(), event.body), traceParent),
      body: event.body,
      redirect: "manual",
      signal,
      dispatcher: agentFor(!options.allowPrivate, connectTimeoutMs),
    });
    statusCode = res.status;
    const responseBody = await readBounded(res, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    const latencyMs = Math.round(performance.now() - started);
    if (res.status >= 200 && res.status < 300)
      return { at, ok: true, retriable: false, statusCode, latencyMs, responseBody };
    const error =
      res.status >= 300 && res.status < 400
        ? `redirect (${res.status}${res.headers.get("location") ? ` to ${res.headers.get("location")}` : ""}) not followed`
        : `receiver answered ${res.status}`;
    return {
      at,
      ok: false,
      retriable: res.status !== 410,
      statusCode,
      latencyMs,
      error,
      responseBody,
      retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
    };
  } catch (err) {
    const latencyMs = Math.round(performance.now() - started);
    const code = (err as { cause?: { code?: string } }).cause?.code;
    const connectTimedOut = code === "UND_ERR_CONNECT_TIMEOUT";
    const error = signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : connectTimedOut
        ? `no connection within ${connectTimeoutMs} ms`
        : `request failed: ${describe(err)}`;
    // The guarded lookup refuses at connect time an address the first check did not see (DNS rebinding).
    if (code === "EWEBHOOKTARGET")
      return { at, ok: false, retriable: true, statusCode, latencyMs, error, refused: true };
    return { at, ok: false, retriable: true, statusCode, latencyMs, error };
  }
}

function withTraceParent(headers: Record<string, string>, traceParent: string | null): Record<string, string> {
  if (traceParent) headers.traceparent = traceParent;
  return headers;
}

/** The first `limit` bytes of the body as text; the rest is never read (the stream is canceled). */
async function readBounded(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let done = false;
  while (total < limit) {
    const next = await reader.read();
    if (next.done) {
      done = true;
      break;
    }
    chunks.push(next.value);
    total += next.value.byteLength;
  }
  if (!done) await reader.cancel().catch(() => {});
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  if (e.cause?.code === "EWEBHOOKTARGET") return e.cause.message ?? "refused";
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : (e.message ?? String(err));
}
