import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  MAX_RETRY_AFTER_MS,
  MAX_WEBHOOK_ATTEMPTS,
  nextRetryDelay,
  parseRetryAfter,
  parseRetrySchedule,
  RETRY_JITTER,
} from "../src/schedule.ts";
import { MAX_QUEUE_ATTEMPTS, WebhookQueue } from "../src/queue.ts";

describe("parseRetrySchedule", () => {
  it("reads comma-separated milliseconds, ignoring spaces and empty entries", () => {
    expect(parseRetrySchedule("0,5000,300000")).toEqual([0, 5000, 300000]);
    expect(parseRetrySchedule(" 0 , 10 ,")).toEqual([0, 10]);
    expect(parseRetrySchedule("7")).toEqual([7]);
  });

  it("accepts MAX_WEBHOOK_ATTEMPTS attempts and refuses one more", () => {
    expect(parseRetrySchedule(Array(MAX_WEBHOOK_ATTEMPTS).fill("1").join(","))).toHaveLength(MAX_WEBHOOK_ATTEMPTS);
    expect(() =>
      parseRetrySchedule(
        Array(MAX_WEBHOOK_ATTEMPTS + 1)
          .fill("1")
          .join(","),
      ),
    ).toThrow(new RegExp(`1 to ${MAX_WEBHOOK_ATTEMPTS} `));
  });

  it("leaves a queue entry BullMQ attempts for the longest schedule, and as many again for errors", () => {
    expect(WebhookQueue.entryOptions.attempts).toBe(MAX_QUEUE_ATTEMPTS);
    expect(MAX_QUEUE_ATTEMPTS).toBeGreaterThanOrEqual(2 * MAX_WEBHOOK_ATTEMPTS);
  });

  it("reads back the default schedule, which is within the cap", () => {
    expect(parseRetrySchedule(DEFAULT_RETRY_SCHEDULE_MS.join(","))).toEqual(DEFAULT_RETRY_SCHEDULE_MS);
  });

  it.each(["", " , ,", "0,-1", "0,1.5", "0,soon", "5s"])("refuses %j", (value) => {
    expect(() => parseRetrySchedule(value)).toThrow(/comma-separated non-negative integers/);
  });
});

describe("nextRetryDelay", () => {
  const schedule = [0, 10_000, 60_000];

  it("takes the entry after the attempts made, scaled by a jitter factor in [0.8, 1.2]", () => {
    expect(nextRetryDelay(schedule, 1, undefined, () => 0.5)).toBe(10_000);
    expect(nextRetryDelay(schedule, 1, undefined, () => 0)).toBe(10_000 * (1 - RETRY_JITTER));
    expect(nextRetryDelay(schedule, 2, undefined, () => 0)).toBe(60_000 * (1 - RETRY_JITTER));
    // Math.random stays below 1, so the factor approaches 1.2 from below (and rounds to it).
    expect(nextRetryDelay(schedule, 2, undefined, () => 0.999_999)).toBe(60_000 * (1 + RETRY_JITTER));
    expect(nextRetryDelay(schedule, 1, undefined, () => 0.75)).toBe(11_000);
    expect(nextRetryDelay(schedule, 0, undefined, () => 0.9)).toBe(0);
  });

  it("stays within the jitter bounds with the default randomness", () => {
    const delays = Array.from({ length: 500 }, () => nextRetryDelay(schedule, 2)!);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(60_000 * 0.8);
    expect(Math.max(...delays)).toBeLessThanOrEqual(60_000 * 1.2);
    expect(new Set(delays).size).toBeGreaterThan(1); // jittered, not fixed
  });

  it("is null once the schedule is exhausted", () => {
    expect(nextRetryDelay(schedule, 3)).toBeNull();
    expect(nextRetryDelay(DEFAULT_RETRY_SCHEDULE_MS, DEFAULT_RETRY_SCHEDULE_MS.length)).toBeNull();
  });

  it("never retries sooner than a Retry-After asked, and clamps a Retry-After past a day", () => {
    const half = () => 0.5;
    expect(nextRetryDelay(schedule, 1, 30_000, half)).toBe(30_000);
    expect(nextRetryDelay(schedule, 1, 2_000, half)).toBe(10_000);
    expect(nextRetryDelay(schedule, 1, 0, half)).toBe(10_000);
    expect(nextRetryDelay(schedule, 1, 30 * 24 * 3600 * 1000, half)).toBe(MAX_RETRY_AFTER_MS);
    expect(nextRetryDelay(schedule, 3, 30_000, half)).toBeNull(); // a Retry-After does not extend the schedule
  });
});

describe("parseRetryAfter", () => {
  const NOW = new Date("2015-10-21T07:28:00Z");
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads delay-seconds", () => {
    expect(parseRetryAfter("120")).toBe(120_000);
    expect(parseRetryAfter(" 5 ")).toBe(5_000);
    expect(parseRetryAfter("0")).toBe(0);
  });

  it("reads an HTTP date as the time left until it, by the clock", () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:29:30 GMT")).toBe(90_000);
    expect(parseRetryAfter("Wednesday, 21-Oct-15 07:28:10 GMT")).toBe(10_000); // the obsolete RFC 850 form
    vi.setSystemTime(new Date(NOW.getTime() + 60_000));
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:29:30 GMT")).toBe(30_000);
  });

  it("takes `now` from the caller when given", () => {
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:01 GMT", NOW.getTime())).toBe(1_000);
  });

  it("reads a date already past as no wait at all", () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
    expect(parseRetryAfter("Tue, 20 Oct 2015 07:28:00 GMT")).toBe(0);
  });

  it.each([undefined, null, "", "soon", "120s", "12 minutes"])("is undefined for %j", (value) => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
    expect(parseRetryAfter(value)).toBeUndefined();
  });
});
