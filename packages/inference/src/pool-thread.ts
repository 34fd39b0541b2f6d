import { parentPort, workerData } from "node:worker_threads";
import type { ResolvedModel } from "@inferline/contracts";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome, SessionSettings } from "./loaded-model.ts";
import { InProcessRunner } from "./runner.ts";
import "./builtin-adapters.ts";

export type ThreadRequest = { type: "run"; id: number; key: string; items: InferenceItem[] };
export type ThreadReply =
  | { type: "ready" }
  | { type: "load-error"; message: string }
  | { type: "result"; id: number; outcomes: ItemOutcome[] }
  | { type: "run-error"; id: number; message: string };

if (parentPort) {
  const port = parentPort;
  const { models, settings } = workerData as { models: ResolvedModel[]; settings: SessionSettings };
  const runner = new InProcessRunner(settings);
  try {
    await runner.load(models);
    port.postMessage({ type: "ready" } satisfies ThreadReply);
  } catch (err) {
    port.postMessage({ type: "load-error", message: (err as Error).message } satisfies ThreadReply);
  }
  port.on("message", (m: ThreadRequest) => {
    runner.run(m.key, m.items).then(
      (outcomes) => port.postMessage({ type: "result", id: m.id, outcomes } satisfies ThreadReply),
      (err: unknown) => port.postMessage({ type: "run-error", id: m.id, message: (err as Error).message } satisfies ThreadReply),
    );
  });
}
