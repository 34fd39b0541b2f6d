import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";

/** Probes and scrapes pass the door uncounted: an operator must see an overloaded process as such. */
const UNCOUNTED = new Set(["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"]);

/** What a client is told to wait when refused at the door: work in flight drains in well under that. */
const RETRY_AFTER_SECONDS = 1;

/** Largest unread body a refused request's connection reads and discards to stay open. */
const DISCARD_BYTES = 64 * 1024;

const OVERLOADED_BODY = JSON.stringify({
  type: "https://inferline.dev/problems/overloaded",
  title: "Service Unavailable",
  status: 503,
  detail: `this API process has as many requests in flight as it serves promptly; retry after ${RETRY_AFTER_SECONDS} s`,
  code: "overloaded",
});

declare module "node:http" {
  interface IncomingMessage {
    /** Takes the request out of the in-flight count (a long-poll while it waits, holding nothing). */
    leaveAdmission?: () => void;
  }
}

/**
 * Admission control at the door: at most `maxInFlight` requests in progress per process. Past
 * it a request is answered 503 `overloaded` with Retry-After before any parsing, authentication
 * or database work, written straight to the socket (it costs a few microseconds, not a route).
 * Work already admitted then finishes at the speed the database allows, and clients that retry
 * hard after an outage meet a fast refusal instead of a queue for connections that times out
 * and is retried again: the backlog a fault leaves drains instead of holding the API down.
 */
export class RequestAdmission {
  private inFlight = 0;
  refused = 0;

  constructor(readonly maxInFlight: number) {}

  get current(): number {
    return this.inFlight;
  }

  wrap(listener: RequestListener): RequestListener {
    return (req, res) => {
      if (UNCOUNTED.has(pathOf(req))) return listener(req, res);
      if (this.inFlight >= this.maxInFlight) return this.refuse(req, res);
      this.inFlight++;
      let counted = true;
      const leave = () => {
        if (!counted) return;
        counted = false;
        this.inFlight--;
      };
      req.leaveAdmission = leave;
      res.once("close", leave);
      listener(req, res);
    };
  }

  private refuse(req: IncomingMessage, res: ServerResponse): void {
    this.refused++;
    // Node discards an unread body to keep the connection; a large or streamed one (a batch upload)
    // is not worth reading to throw away, so that connection closes after the answer.
    const close =
      Number(req.headers["content-length"] ?? 0) > DISCARD_BYTES || req.headers["transfer-encoding"] !== undefined;
    res.writeHead(503, {
      "content-type": "application/problem+json",
      "content-length": Buffer.byteLength(OVERLOADED_BODY),
      "retry-after": String(RETRY_AFTER_SECONDS),
      ...(close ? { connection: "close" } : {}),
    });
    res.end(OVERLOADED_BODY);
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
