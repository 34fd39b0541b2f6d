import crypto from "node:crypto";
import type { FlatTensor } from "@inferline/contracts";
import type { NewJob } from "@inferline/db";

/** A one-number FP32 tensor named `x`: the input of the jobs tests build. */
export function tensor(value: number): FlatTensor {
  return { name: "x", datatype: "FP32", shape: [1], data: [value] };
}

/** A queued job as the API would insert it, on a queue entry of its own unless `overrides` say otherwise. */
export function newJob(tenantId: string, overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: crypto.randomUUID(),
    tenantId,
    model: "iris",
    version: "1",
    priority: "normal",
    inputs: [tensor(1)],
    requestedOutputs: [],
    metadata: {},
    webhook: null,
    idempotencyKey: null,
    requestHash: null,
    dispatchId: crypto.randomUUID(),
    queueDeadline: null,
    cancelAt: null,
    createdAt: new Date(),
    ...overrides,
  };
}
