// A thread task for the tests (thread-tasks.test.ts): runs one `index` row through the thread's
// loaded model (its adapter included, so the fault models misbehave for index 2) and answers the
// values as a transferred Float32Array, with what it was started with and what it was sent.
import type { ThreadTaskFactory } from "../../src/index.ts";

export interface LookupTaskRequest {
  index: number;
  /** Thrown inside the task instead of running. */
  fail?: string;
  /** Sent along (and transferred, when the caller lists it) to show that it arrives whole. */
  buffer?: ArrayBuffer;
}

export interface LookupTaskAnswer {
  values: Float32Array;
  data: unknown;
  receivedBytes: number;
}

export const createThreadTask: ThreadTaskFactory = (model, data) => ({
  async run(payload) {
    const request = payload as LookupTaskRequest;
    if (request.fail) throw new Error(request.fail);
    const [outcome] = await model.run([
      { inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [request.index] }] },
    ]);
    if (!outcome?.ok) throw new Error(`lookup failed: ${outcome?.message}`);
    const values = Float32Array.from(outcome.result.outputs[0]!.data as number[]);
    const value: LookupTaskAnswer = { values, data, receivedBytes: request.buffer?.byteLength ?? 0 };
    return { value, transfer: [values.buffer] };
  },
});
