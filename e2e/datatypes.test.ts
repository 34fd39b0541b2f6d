import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Datatype, type TensorElement } from "@inferline/contracts";
import { DATATYPE_SAMPLES, ECHO_WIDTH, echoModelName } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Every datatype end to end: a job through the API, the queue and a worker's onnxruntime session
// of an echo model (built with onnx-proto), and back as JSON. `y` is the input as the model got
// it; `seen` is the model's own text of it.

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ echoModels: true });
});
afterAll(async () => {
  await stack?.close();
});

const job = (datatype: Datatype, data: unknown[]) => ({
  model: echoModelName(datatype),
  inputs: [{ name: "x", datatype, shape: [1, ECHO_WIDTH], data }],
});
const text = (base64: TensorElement): string => Buffer.from(base64 as string, "base64").toString("utf8");

async function run(
  datatype: Datatype,
  data: unknown[],
): Promise<{ y: TensorElement[]; seen: string[]; datatypes: string[] }> {
  const submit = await stack.alpha.post("/v1/jobs", job(datatype, data));
  expect(submit.status).toBe(202);
  const done = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=30`);
  expect(done.body).toMatchObject({ status: "succeeded" });
  const outputs: Array<{ name: string; datatype: string; data: TensorElement[] }> = done.body.result.outputs;
  const [y, seen] = ["y", "seen"].map((name) => outputs.find((o) => o.name === name)!);
  return { y: y!.data, seen: seen!.data.map(text), datatypes: [y!.datatype, seen!.datatype] };
}

describe("every datatype through the API and a worker", () => {
  it.each(Datatype.options)(
    "%s: the model gets the values sent and the result holds them exactly",
    async (datatype) => {
      const sample = DATATYPE_SAMPLES[datatype];
      expect(await run(datatype, sample.input)).toEqual({
        y: sample.y,
        seen: sample.seen,
        datatypes: [datatype, "BYTES"],
      });
    },
  );

  it("INT64: takes any integer as a decimal string; answers numbers within ±(2^53-1) and strings past it", async () => {
    const result = await run("INT64", ["9007199254740993", "42", -9007199254740991, "-9223372036854775808"]);
    expect(result.y).toEqual(["9007199254740993", 42, -9007199254740991, "-9223372036854775808"]);
    expect(result.seen).toEqual(["9007199254740993", "42", "-9007199254740991", "-9223372036854775808"]);
  });

  it("FP16: rounds each number to the nearest half float, and answers its exact value", async () => {
    const result = await run("FP16", [1 / 3, 65519, -0.000061035156, 2049]);
    expect(result.y).toEqual([0.333251953125, 65504, -0.00006103515625, 2048]);
  });
});

describe("elements a datatype cannot hold are refused at submit, naming the element", () => {
  it.each<[Datatype, unknown, RegExp]>([
    ["INT64", Number.MAX_SAFE_INTEGER + 1, /INT64 range.*decimal string/],
    ["INT64", "9223372036854775808", /INT64 range/],
    ["FP16", 65520, /FP16 range \(±65504\)/],
    ["UINT8", 256, /UINT8 range/],
    ["BOOL", 1, /boolean/],
    ["BYTES", "not base64!", /base64/],
  ])("%s %j", async (datatype, bad, message) => {
    const data = [...DATATYPE_SAMPLES[datatype].input];
    data[2] = bad as TensorElement;
    const submit = await stack.alpha.post("/v1/jobs", job(datatype, data));
    expect(submit.status).toBe(422);
    expect(submit.body.errors).toEqual([{ path: "/inputs/0/data/2", message: expect.stringMatching(message) }]);
  });

  it("INT64 2^53+1 as a JSON number, which JSON.parse rounds: refused, never run as 2^53", async () => {
    const body = JSON.stringify(job("INT64", [1, 2, 0, 4])).replace("[1,2,0,4]", "[1,2,9007199254740993,4]");
    const submit = await stack.alpha.request("POST", "/v1/jobs", {
      body,
      headers: { "content-type": "application/json" },
    });
    expect(submit.status).toBe(422);
    expect(submit.body.errors).toEqual([
      { path: "/inputs/0/data/2", message: expect.stringContaining("decimal string") },
    ]);
  });
});
