import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODELS_DIR } from "@inferline/contracts";
import { IRIS_SAMPLES, irisJob, sleepUntil } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

describe("submit, run, poll", () => {
  it("answers 202 with the queued job and a Location, then the job succeeds with outputs equal to onnxruntime's", async () => {
    const rows = [IRIS_SAMPLES.setosa, IRIS_SAMPLES.versicolor, IRIS_SAMPLES.virginica];
    const submit = await stack.alpha.post("/v1/jobs", irisJob(rows, { metadata: { customer: "c-17" } }));
    expect(submit.status).toBe(202);
    expect(submit.headers.get("location")).toBe(`/v1/jobs/${submit.body.id}`);
    expect(submit.body).toMatchObject({
      status: "queued",
      model: "iris",
      version: "1",
      metadata: { customer: "c-17" },
    });

    const done = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=10`);
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("succeeded");
    expect(done.body.attempts).toBe(1);
    expect(Date.parse(done.body.completedAt)).toBeGreaterThanOrEqual(Date.parse(done.body.startedAt));

    const session = await ort.InferenceSession.create(path.join(DEFAULT_MODELS_DIR, "iris", "iris.onnx"));
    const expected = await session.run({ features: new ort.Tensor("float32", Float32Array.from(rows.flat()), [3, 4]) });
    const output = done.body.result.outputs[0];
    expect(output).toMatchObject({ name: "probabilities", datatype: "FP32", shape: [3, 3] });
    expect(output.data).toEqual(Array.from(expected.probabilities!.data as Float32Array));
    expect(done.body.result.classifications.map((c: { label: string }) => c.label)).toEqual([
      "setosa",
      "versicolor",
      "virginica",
    ]);
    expect(Object.keys(done.body.result.classifications[0].probabilities).sort()).toEqual([
      "setosa",
      "versicolor",
      "virginica",
    ]);
    await session.release();
  });

  it("accepts nested data of the right shape", async () => {
    const submit = await stack.alpha.post("/v1/jobs", {
      model: "iris",
      inputs: [
        { name: "features", datatype: "FP32", shape: [2, 4], data: [IRIS_SAMPLES.setosa, IRIS_SAMPLES.virginica] },
      ],
    });
    expect(submit.status).toBe(202);
    const done = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=10`);
    expect(done.body.result.classifications.map((c: { label: string }) => c.label)).toEqual(["setosa", "virginica"]);
  });

  it("shows queued, then running, then succeeded", async () => {
    await stack.stopWorker();
    const submit = await stack.alpha.post("/v1/jobs", irisJob());
    const queued = await stack.alpha.get(`/v1/jobs/${submit.body.id}`);
    expect(queued.body.status).toBe("queued");
    expect(queued.body.startedAt).toBeUndefined();
    const seen = new Set<string>();
    await stack.startWorker();
    await sleepUntil(async () => {
      const r = await stack.alpha.get(`/v1/jobs/${submit.body.id}`);
      seen.add(r.body.status);
      return r.body.status === "succeeded";
    });
    expect(seen.has("succeeded")).toBe(true);
    expect([...seen].every((s) => ["queued", "running", "succeeded"].includes(s))).toBe(true);
  });
});

describe("Open Inference Protocol v2", () => {
  it("health and model metadata", async () => {
    expect((await stack.anonymous.get("/v2/health/live")).body).toEqual({ live: true });
    expect((await stack.anonymous.get("/v2/health/ready")).body).toEqual({ ready: true });
    expect((await stack.anonymous.get("/v2/models/iris")).status).toBe(401);
    const meta = await stack.alpha.get("/v2/models/iris");
    expect(meta.body).toEqual({
      name: "iris",
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "features", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
    });
    expect((await stack.alpha.get("/v2/models/iris/versions/1")).status).toBe(200);
    expect((await stack.alpha.get("/v2/models/iris/ready")).body).toEqual({ name: "iris", ready: true });
    expect((await stack.alpha.get("/v2/models/nope")).status).toBe(404);
  });

  it("infer answers synchronously through the queue, and the job is on record", async () => {
    const res = await stack.alpha.post("/v2/models/iris/infer", {
      id: "req-1",
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: IRIS_SAMPLES.virginica }],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: "req-1",
      model_name: "iris",
      model_version: "1",
      outputs: [{ name: "probabilities", shape: [1, 3] }],
    });
    expect(res.body.classifications[0].label).toBe("virginica");
    const listed = await stack.alpha.get("/v1/jobs?limit=1");
    expect(listed.body.jobs[0]).toMatchObject({
      priority: "high",
      metadata: { v2_request_id: "req-1" },
      status: "succeeded",
    });
  });

  it("a bad tensor is a 422 and a model error is reported", async () => {
    const bad = await stack.alpha.post("/v2/models/iris/infer", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }],
    });
    expect(bad.status).toBe(422);
    const failed = await stack.alpha.post("/v2/models/lookup/infer", {
      inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [5] }],
    });
    expect(failed.status).toBe(422);
    expect(failed.body.error).toMatch(/^inference_error/);
  });
});
