import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { finishedChannel, FinishedListener, FinishedNotifier, MAX_ANNOUNCED_VIEW_BYTES } from "@inferline/queue";
import { irisJob, sleepUntil, testRedisUrl } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// No worker: the test itself plays the worker's finished message, while the job's row stays
// queued. A long-poll that answers a terminal job can then only have taken it from the message.
let stack: TestStack;
let publisher: Redis;
beforeAll(async () => {
  stack = await startStack({ worker: false });
  publisher = new Redis(testRedisUrl());
});
afterAll(async () => {
  publisher?.disconnect();
  await stack?.close();
});

const submit = async (): Promise<{ id: string; view: Record<string, unknown> }> => {
  const res = await stack.alpha.post("/v1/jobs", irisJob());
  expect(res.status).toBe(202);
  return { id: res.body.id as string, view: res.body as Record<string, unknown> };
};

/** The job as a worker's message would show it once succeeded, with a result no run of iris gives. */
const succeeded = (view: Record<string, unknown>) => ({
  ...view,
  status: "succeeded",
  attempts: 1,
  startedAt: new Date().toISOString(),
  completedAt: new Date().toISOString(),
  result: { outputs: [{ name: "probabilities", datatype: "FP32", shape: [1, 3], data: [0.25, 0.25, 0.5] }] },
});

/** Long-polls waiting in the API (its gauge). */
async function waiters(): Promise<number> {
  const text = await (await fetch(`${stack.api.url}/metrics`)).text();
  return Number(
    text
      .split("\n")
      .find((l) => l.startsWith("inferline_api_long_poll_waiters "))
      ?.split(" ")[1],
  );
}

/** Publishes on the finished channel until the API's long-poll on `id` has answered (the poll must be waiting to hear it). */
async function announceUntilAnswered(message: () => string, answered: () => boolean): Promise<void> {
  await sleepUntil(
    async () => {
      await publisher.publish(finishedChannel(stack.prefix), message());
      return answered();
    },
    { message: "the long-poll never answered" },
  );
}

describe("long-polls answered from the finished message", () => {
  it("answers with the job the message carries, without reading it again", async () => {
    const { id, view } = await submit();
    const announced = succeeded(view);
    let body: Record<string, unknown> | undefined;
    const poll = stack.alpha.get(`/v1/jobs/${id}?wait=20`).then((res) => (body = res.body as Record<string, unknown>));
    await announceUntilAnswered(
      () => `${id},${JSON.stringify({ [id]: announced })}`,
      () => body !== undefined,
    );
    await poll;
    expect(body).toEqual(announced);
    // The row never changed: the answer came from the message.
    expect((await stack.alpha.get(`/v1/jobs/${id}`)).body.status).toBe("queued");
  });

  it("reads the job instead when the message's view is of another job, not terminal, or malformed", async () => {
    const { id, view } = await submit();
    const other = await submit();
    const announced = succeeded(view);
    const refused = [
      `${id},${JSON.stringify({ [id]: { ...succeeded(view), id: other.id } })}`,
      `${id},${JSON.stringify({ [id]: { ...view, status: "running" } })}`,
      `${id},{"${id}":`,
    ];
    let body: Record<string, unknown> | undefined;
    const poll = stack.alpha.get(`/v1/jobs/${id}?wait=20`).then((res) => (body = res.body as Record<string, unknown>));
    await sleepUntil(async () => (await waiters()) === 1, { message: "the long-poll never waited" });
    // Each refused message wakes it to read the row (queued) and wait again; only the last answers.
    let sent = 0;
    await announceUntilAnswered(
      () => refused[sent++] ?? `${id},${JSON.stringify({ [id]: announced })}`,
      () => body !== undefined,
    );
    await poll;
    expect(sent).toBeGreaterThan(refused.length);
    expect(body).toEqual(announced);
  });
});

describe("the finished message", () => {
  let subscriber: Redis;
  let listener: FinishedListener;
  const prefix = `views-${process.pid}-${Date.now()}`;
  beforeAll(async () => {
    subscriber = new Redis(testRedisUrl());
    listener = await FinishedListener.start(subscriber, prefix);
  });
  afterAll(async () => {
    await listener?.close();
  });

  it("carries views within its budget; the jobs past it wake without one, and a listener that splits on commas still finds every id", async () => {
    const notifier = new FinishedNotifier(publisher, prefix);
    const big = "x".repeat(MAX_ANNOUNCED_VIEW_BYTES - 100);
    const ids = [
      "0b6f3c52-5f39-4a57-9f0c-0a5ad2d1c001",
      "0b6f3c52-5f39-4a57-9f0c-0a5ad2d1c002",
      "0b6f3c52-5f39-4a57-9f0c-0a5ad2d1c003",
    ];
    const views = new Map([
      [ids[0]!, JSON.stringify({ id: ids[0], status: "succeeded", note: big })],
      [ids[1]!, JSON.stringify({ id: ids[1], status: "failed", note: "a,b,c" })],
    ]);
    const raw = new Redis(testRedisUrl());
    const rawMessage = new Promise<string>((resolve) =>
      raw.on("message", (_channel: string, message: string) => resolve(message)),
    );
    await raw.subscribe(finishedChannel(prefix));
    const waits = ids.map((id) => listener.wait(id, 20_000).promise);
    // The first view fills the budget: the second is left out, and the third had none.
    await notifier.publish(ids, views);
    const ends = await Promise.all(waits);
    expect(ends[0]).toEqual({ announced: true, view: JSON.parse(views.get(ids[0]!)!) });
    expect(ends[1]).toEqual({ announced: true });
    expect(ends[2]).toEqual({ announced: true });
    // As a listener that predates views reads it: every id is a comma-separated part.
    const parts = (await rawMessage).split(",");
    for (const id of ids) expect(parts).toContain(id);
    raw.disconnect();
  });
});
