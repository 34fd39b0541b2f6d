import { describe, expect, it } from "vitest";
import { isNetworkError, isRetryableStatus, retryAfterMs, retryDelayMs } from "../src/retry-policy.ts";

describe("retryAfterMs", () => {
  it("reads delta-seconds and HTTP dates, and nothing else", () => {
    const now = Date.parse("2026-01-05T10:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Mon, 05 Jan 2026 10:00:07 GMT", now)).toBe(7000);
    expect(retryAfterMs("Mon, 05 Jan 2026 09:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs("-1", now)).toBeUndefined();
  });
});

describe("retryDelayMs", () => {
  it("honours the server's delay up to the cap, plus at most 10 %", () => {
    expect(retryDelayMs(0, 30_000, 2000, () => 0)).toBe(2000);
    expect(retryDelayMs(0, 30_000, 2000, () => 1)).toBeCloseTo(2200);
    expect(retryDelayMs(0, 5000, 3_600_000, () => 0)).toBe(5000);
  });

  it("backs off exponentially with jitter over [half, whole], capped", () => {
    expect(retryDelayMs(0, 30_000, undefined, () => 1)).toBe(250);
    expect(retryDelayMs(3, 30_000, undefined, () => 1)).toBe(2000);
    expect(retryDelayMs(3, 30_000, undefined, () => 0)).toBe(1000);
    expect(retryDelayMs(20, 30_000, undefined, () => 1)).toBe(30_000);
  });
});

describe("isNetworkError", () => {
  const fetchFailed = (cause: unknown) => Object.assign(new TypeError("fetch failed"), { cause });
  it("retries socket failures, not a refused URL or an unknown host", () => {
    expect(
      isNetworkError(
        fetchFailed(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" })),
      ),
    ).toBe(true);
    expect(isNetworkError(fetchFailed(Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" })))).toBe(
      true,
    );
    expect(
      isNetworkError(fetchFailed(new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]))),
    ).toBe(true);
    expect(isNetworkError(fetchFailed(new Error("bad port")))).toBe(false);
    expect(
      isNetworkError(fetchFailed(Object.assign(new Error("getaddrinfo ENOTFOUND nope"), { code: "ENOTFOUND" }))),
    ).toBe(false);
    expect(isNetworkError(new SyntaxError("Unexpected token"))).toBe(false);
  });
});

describe("isRetryableStatus", () => {
  it("retries 429 and 503 for any request, 408, 502 and 504 only for idempotent ones, nothing else", () => {
    for (const status of [429, 503])
      expect([isRetryableStatus(status, false), isRetryableStatus(status, true)]).toEqual([true, true]);
    for (const status of [408, 502, 504])
      expect([isRetryableStatus(status, false), isRetryableStatus(status, true)]).toEqual([false, true]);
    for (const status of [400, 401, 404, 409, 422, 500]) expect(isRetryableStatus(status, true)).toBe(false);
  });
});
