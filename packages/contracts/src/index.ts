export * from "./errors.ts";
export * from "./tensor.ts";
export * from "./manifest.ts";
export * from "./model-repository.ts";
export * from "./validate-inputs.ts";
export * from "./job.ts";
export * from "./env.ts";
export * from "./batch.ts";
