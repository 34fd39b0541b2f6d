import { parentPort, workerData } from "node:worker_threads";
import { InferlineError, type ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { InProcessRunner, modelKey, type RunnerSettings } from "./runner.ts";
import "./builtin-adapters.ts";

/** What a pool thread is started with (structured-cloneable: no logger). */
export interface ThreadData {
  models: ResolvedModel[];
  settings: Pick<RunnerSettings, "intraOpThreads" | "adapterModules">;
}

export type ThreadRequest = { type: "run"; id: number; key: string; items: InferenceItem[] };
export type ThreadReply =
  /** Loaded; `failed` lists the model keys that did not load, with why. */
  | { type: "ready"; failed: Array<{ key: string; code?: string; message: string }> }
  /** Nothing could load (an adapter module failed to import). */
  | { type: "load-error"; code?: string; message: string }
  | { type: "result"; id: number; outcomes: ItemOutcome[] }
  | { type: "run-error"; id: number; message: string };

if (parentPort) {
  const port = parentPort;
  const { models, settings } = workerData as ThreadData;
  const runner = new InProcessRunner(settings);
  try {
    const failures = await runner.load(models);
    const failed = failures.map((f) => ({ key: modelKey(f.model.manifest.name, f.model.version), code: codeOf(f.error), message: f.error.message }));
    port.postMessage({ type: "ready", failed } satisfies ThreadReply);
  } catch (err) {
    port.postMessage({ type: "load-error", code: codeOf(err), message: (err as Error).message } satisfies ThreadReply);
  }
  // The pool sends one run at a time and waits for its reply.
  port.on("message", (m: ThreadRequest) => {
    runner.run(m.key, m.items).then(
      (outcomes) => port.postMessage({ type: "result", id: m.id, outcomes } satisfies ThreadReply),
      (err: unknown) => port.postMessage({ type: "run-error", id: m.id, message: (err as Error).message } satisfies ThreadReply),
    );
  });
}

function codeOf(err: unknown): string | undefined {
  return err instanceof InferlineError ? err.code : undefined;
}
