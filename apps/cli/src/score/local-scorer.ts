import { Worker } from "node:worker_threads";
import { modelFilePath, type ResolvedModel } from "@inferline/contracts";
import type { ChunkScorer } from "./chunk-scorer.ts";
import type { ThreadInit, ThreadReply, ThreadRequest } from "./score-thread.ts";
import { UsageError, type RawChunk, type ScoredChunk, type ScoreSettings, type Scorer } from "./types.ts";

const THREAD_URL = new URL("./score-thread.mjs", import.meta.url);
/** Young generation of a worker's heap: V8's default (48 MB) buys little speed here and costs RSS. */
const THREAD_YOUNG_GENERATION_MB = 24;

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, { resolve: (v: ScoredChunk) => void; reject: (e: unknown) => void }>;
}

/**
 * Scores chunks in-process: `threads - 1` worker threads plus the main thread itself, each with
 * its own onnxruntime session (one intra-op thread) and each parsing, running and formatting whole
 * chunks. Reading, writing and ordering cost the main thread little, so it scores chunks whenever
 * every worker already has two queued; that saves a whole thread's memory (a V8 heap, the
 * TypeScript loader) against one worker per core. Chunk bytes go to threads and results come back
 * as transferred buffers (no copies, no per-row objects across threads).
 */
export class LocalScorer implements Scorer {
  private readonly slots: Slot[] = [];
  private inline: ChunkScorer | undefined;
  private inlineBusy = false;
  /** Two chunks per worker in flight (one running, one queued behind it), plus one on this thread. */
  readonly parallelism: number;

  constructor(
    private readonly model: ResolvedModel,
    private readonly settings: ScoreSettings,
    private readonly threads: number,
  ) {
    this.parallelism = (threads - 1) * 2 + 1;
  }

  async start(): Promise<void> {
    let onnxFile: string;
    try {
      onnxFile = modelFilePath(this.model);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const init: ThreadInit = {
      model: { manifest: this.model.manifest, version: this.model.version, dir: this.model.dir, spec: this.model.spec },
      onnxFile,
      settings: this.settings,
    };
    // No inherited flags: V8 flags are refused in threads, profilers stay on the main thread, and the
    // bootstrap registers the TypeScript loader itself (an inherited `--import tsx` would load it twice).
    const execArgv: string[] = [];
    const inline = (async () => {
      const { ChunkScorer } = await import("./chunk-scorer.ts");
      try {
        this.inline = await ChunkScorer.create(this.model, onnxFile, this.settings);
      } catch (err) {
        throw new UsageError(`cannot load model ${this.model.manifest.name}@${this.model.version}: ${(err as Error).message}`);
      }
    })();
    await Promise.all([
      inline,
      ...Array.from({ length: this.threads - 1 }, async () => {
        const worker = new Worker(THREAD_URL, { execArgv, workerData: init, resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB } });
        const slot: Slot = { worker, busy: 0, pending: new Map() };
        this.slots.push(slot);
        await new Promise<void>((resolve, reject) => {
          worker.once("error", reject);
          worker.once("message", (m: ThreadReply) =>
            m.type === "ready" ? resolve() : reject(new UsageError(`cannot load model ${this.model.manifest.name}@${this.model.version}: ${m.type === "load-error" ? m.message : m.type}`)),
          );
        });
        worker.on("message", (m: ThreadReply) => this.onReply(slot, m));
        worker.on("error", (err) => this.failAll(slot, err));
        worker.on("exit", (code) => this.failAll(slot, new Error(`a scoring thread exited (code ${code})`)));
      }),
    ]);
  }

  score(chunk: RawChunk): Promise<ScoredChunk> {
    const slot = this.slots.length > 0 ? this.slots.reduce((a, b) => (b.busy < a.busy ? b : a)) : undefined;
    if (!slot || (slot.busy >= 2 && !this.inlineBusy)) return this.scoreInline(chunk);
    slot.busy++;
    return new Promise<ScoredChunk>((resolve, reject) => {
      slot.pending.set(chunk.seq, { resolve, reject });
      const req: ThreadRequest = { seq: chunk.seq, bytes: chunk.bytes, startLine: chunk.startLine };
      const whole = chunk.bytes.byteOffset === 0 && chunk.bytes.byteLength === chunk.bytes.buffer.byteLength;
      slot.worker.postMessage(req, whole ? [chunk.bytes.buffer as ArrayBuffer] : []);
    });
  }

  private async scoreInline(chunk: RawChunk): Promise<ScoredChunk> {
    this.inlineBusy = true;
    try {
      const r = await this.inline!.score(chunk.bytes, chunk.startLine);
      return { seq: chunk.seq, ...r };
    } finally {
      this.inlineBusy = false;
    }
  }

  private onReply(slot: Slot, m: ThreadReply): void {
    if (m.type !== "result" && m.type !== "chunk-error") return;
    const waiter = slot.pending.get(m.seq);
    if (!waiter) return;
    slot.pending.delete(m.seq);
    slot.busy--;
    if (m.type === "result") waiter.resolve({ seq: m.seq, out: m.out, errors: m.errors, rows: m.rows, failures: m.failures });
    else waiter.reject(new Error(`scoring failed: ${m.message}`));
  }

  private failAll(slot: Slot, err: unknown): void {
    for (const w of slot.pending.values()) w.reject(err);
    slot.pending.clear();
    slot.busy = 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
    await this.inline?.close();
    this.inline = undefined;
  }
}
