import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { irisJob, sleepUntil } from "@inferline/testing";
import { webhookHeaders } from "@inferline/webhooks";
import { exitOf, ROOT } from "./support/processes.ts";
import { startStack, type TestStack } from "./support/stack.ts";

// The README's webhook receiver (examples/webhook-receiver), run as a user runs it: a real delivery
// from a worker is accepted, forged and tampered ones are refused, a retried one is acted on once.

const SERVER = path.join(ROOT, "examples/webhook-receiver/server.js");

/** What the example prints for each event it accepts. */
interface Handled {
  webhookId: string;
  type: string;
  id: string;
  status: string;
}

class ExampleReceiver {
  private out = "";
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on("data", (d) => (this.out += d));
    child.stderr!.on("data", (d) => (this.out += d));
  }

  static async start(secret: string): Promise<{ receiver: ExampleReceiver; url: string }> {
    const child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, INFERLINE_WEBHOOK_SECRET: secret, PORT: "0", HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const receiver = new ExampleReceiver(child);
    const url = await sleepUntil(() => /listening on (http:\/\/\S+)/.exec(receiver.out)?.[1], {
      message: "the example to listen",
    });
    return { receiver, url: `${url}/inferline` };
  }

  /** The events it accepted, in order. */
  handled(): Handled[] {
    return this.out
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Handled);
  }

  output(): string {
    return this.out;
  }

  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    expect(await exitOf(this.child)).toBe(0);
  }
}

let stack: TestStack;
let receiver: ExampleReceiver;
let url: string;
let secret: string;

beforeAll(async () => {
  stack = await startStack({ api: { WEBHOOK_ALLOW_PRIVATE: "true" }, workerEnv: { WEBHOOK_ALLOW_PRIVATE: "true" } });
  secret = (await stack.alpha.get("/v1/webhooks/secret")).body.secret;
  ({ receiver, url } = await ExampleReceiver.start(secret));
});
afterAll(async () => {
  await receiver?.stop();
  await stack?.close();
});

/** POSTs `body` to the example with `headers`; resolves with the status. */
async function deliver(body: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { method: "POST", body, headers });
  await res.arrayBuffer();
  return res.status;
}

/** A job.succeeded event for a made-up job, as the worker would send it. */
function event(jobId: string): string {
  return JSON.stringify({
    type: "job.succeeded",
    timestamp: new Date().toISOString(),
    data: { id: jobId, status: "succeeded" },
  });
}

const msgId = () => `msg_${crypto.randomUUID()}`;
const otherSecret = () => `whsec_${crypto.randomBytes(24).toString("base64")}`;

describe("examples/webhook-receiver", () => {
  it("accepts the delivery a worker signed for a job", async () => {
    const res = await stack.alpha.post("/v1/jobs", irisJob(undefined, { cache: "bypass", webhook: { url } }));
    expect(res.status, res.text).toBe(202);
    const jobId = res.body.id as string;
    const [handled] = await sleepUntil(() => {
      const seen = receiver.handled().filter((h) => h.id === jobId);
      return seen.length > 0 ? seen : undefined;
    });
    expect(handled).toMatchObject({ type: "job.succeeded", id: jobId, status: "succeeded" });
    const record = await sleepUntil(async () => {
      const body = (await stack.alpha.get(`/v1/jobs/${jobId}/webhooks`)).body;
      return body.events[0]?.status === "delivered" ? body : undefined;
    });
    expect(record.attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 204 })]);
    expect(handled!.webhookId).toBe(record.events[0].id);
  });

  it("refuses a forged delivery and a tampered one, and acts on a signed one once", async () => {
    const before = receiver.handled().length;
    const forgedBody = event("forged-job");
    expect(await deliver(forgedBody, webhookHeaders([otherSecret()], msgId(), new Date(), forgedBody))).toBe(400);
    const signedElsewhere = webhookHeaders([secret], msgId(), new Date(), event("signed-job"));
    expect(await deliver(event("tampered-job"), signedElsewhere)).toBe(400);
    expect(await deliver(forgedBody, { "content-type": "application/json" })).toBe(400);

    const genuineBody = event("genuine-job");
    const genuine = webhookHeaders([secret], msgId(), new Date(), genuineBody);
    expect(await deliver(genuineBody, genuine)).toBe(204);
    expect(await deliver(genuineBody, genuine)).toBe(204); // a retry of the same event
    const lastBody = event("last-job");
    const last = webhookHeaders([secret], msgId(), new Date(), lastBody);
    expect(await deliver(lastBody, last)).toBe(204);

    // Output is ordered: once the last event is printed, everything accepted before it is too.
    await sleepUntil(() => receiver.handled().some((h) => h.id === "last-job"), { message: "the last event" });
    expect(receiver.handled().slice(before)).toEqual([
      { webhookId: genuine["webhook-id"], type: "job.succeeded", id: "genuine-job", status: "succeeded" },
      { webhookId: last["webhook-id"], type: "job.succeeded", id: "last-job", status: "succeeded" },
    ]);
    expect(receiver.output()).toMatch(/refused a delivery/);
  });
});
