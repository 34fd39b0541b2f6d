import { pathToFileURL } from "node:url";
import type { TransferListItem } from "node:worker_threads";
import { InferlineError } from "@inferline/contracts";
import type { LoadedModel } from "./loaded-model.ts";

/**
 * A caller's own work that runs inside a pool thread, beside the thread's loaded model
 * (ThreadPoolRunner.runTask), under the pool's run timeout, thread replacement and crash
 * handling. The CLI parses, scores (LoadedModel.runDense) and formats whole chunks of a file this
 * way, so that only the chunk's bytes and its formatted results cross between threads.
 */
export interface ThreadTask {
  run(payload: unknown): Promise<TaskAnswer> | TaskAnswer;
}

/** A task's answer; buffers in `transfer` move to the caller's thread instead of being copied. */
export interface TaskAnswer {
  value: unknown;
  transfer?: TransferListItem[];
}

/**
 * What a task module exports as `createThreadTask`: called in every pool thread, once per model
 * the thread loaded, with the pool's `task.data`. A throw fails that model's load.
 */
export type ThreadTaskFactory = (model: LoadedModel, data: unknown) => Promise<ThreadTask> | ThreadTask;

/** The task a pool's threads serve: an ES module (absolute path or file: URL) and data for it (structured-cloneable). */
export interface ThreadTaskSpec {
  module: string;
  data?: unknown;
}

/** Imports a task module; one that fails to import, or exports no factory, stops the whole pool. */
export async function importThreadTask(spec: ThreadTaskSpec): Promise<ThreadTaskFactory> {
  const url = spec.module.startsWith("file:") ? spec.module : pathToFileURL(spec.module).href;
  let factory: unknown;
  try {
    factory = ((await import(url)) as { createThreadTask?: unknown }).createThreadTask;
  } catch (err) {
    throw new InferlineError(
      "task_module_failed",
      `thread task module ${spec.module} failed to load: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (typeof factory !== "function")
    throw new InferlineError(
      "task_module_failed",
      `thread task module ${spec.module} exports no createThreadTask function`,
    );
  return factory as ThreadTaskFactory;
}
