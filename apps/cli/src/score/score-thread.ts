import { parentPort, workerData } from "node:worker_threads";
import type { ResolvedModel } from "@inferline/contracts";
import { ChunkScorer } from "./chunk-scorer.ts";
import type { ScoreSettings } from "./types.ts";

export interface ThreadInit {
  model: ResolvedModel;
  onnxFile: string;
  settings: ScoreSettings;
}
export type ThreadRequest = { seq: number; bytes: Uint8Array; startLine: number };
export type ThreadReply =
  | { type: "ready" }
  | { type: "load-error"; message: string }
  | { type: "result"; seq: number; out: Uint8Array; errors: Uint8Array; rows: number; failures: number }
  | { type: "chunk-error"; seq: number; message: string };

if (parentPort) {
  const port = parentPort;
  const { model, onnxFile, settings } = workerData as ThreadInit;
  let scorer: ChunkScorer | undefined;
  try {
    scorer = await ChunkScorer.create(model, onnxFile, settings);
    port.postMessage({ type: "ready" } satisfies ThreadReply);
  } catch (err) {
    port.postMessage({ type: "load-error", message: (err as Error).message } satisfies ThreadReply);
  }
  if (scorer) {
    const s = scorer;
    // One chunk at a time per thread: onnxruntime runs on this thread anyway.
    let queue = Promise.resolve();
    port.on("message", (m: ThreadRequest) => {
      queue = queue.then(async () => {
        try {
          const r = await s.score(m.bytes, m.startLine);
          const reply: ThreadReply = { type: "result", seq: m.seq, ...r };
          port.postMessage(reply, [r.out.buffer as ArrayBuffer, r.errors.buffer as ArrayBuffer]);
        } catch (err) {
          port.postMessage({ type: "chunk-error", seq: m.seq, message: (err as Error).message } satisfies ThreadReply);
        }
      });
    });
  }
}
