import fs from "node:fs";
import path from "node:path";
import { once } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ModelRepository } from "@inferline/runtime";
import {
  createTestModelRepository,
  exitFixtureThreads,
  FIXTURE_ADAPTERS_MODULE,
  LOOKUP_TABLE,
  sleepUntil,
} from "@inferline/testing";
import {
  InferenceEngine,
  InProcessRunner,
  ThreadPoolRunner,
  type InferenceItem,
  type ItemOutcome,
  type ModelRunner,
} from "../src/index.ts";

// Real pool threads and onnxruntime on the test-only fault models: each answers like `lookup`
// except for index 2, which hangs (hang), ends its thread (crash) or sleeps 1.5 s (slow).

let fixtures: { dir: string; remove(): void };
let repo: ModelRepository;
const open: Array<{ close(): Promise<void> }> = [];

beforeAll(() => {
  fixtures = createTestModelRepository({ faultModels: true });
  repo = ModelRepository.load(fixtures.dir);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
afterAll(() => fixtures?.remove());

const lookup = (index: number): InferenceItem => ({
  inputs: [{ name: "index", datatype: "INT64", shape: [1, 1], data: [index] }],
});
const values = (outcome: ItemOutcome | undefined) => (outcome?.ok ? outcome.result.outputs[0]!.data : outcome);

function pool(threads: number, settings: ConstructorParameters<typeof ThreadPoolRunner>[1] = {}): ThreadPoolRunner {
  const runner = new ThreadPoolRunner(threads, {
    adapterModules: [FIXTURE_ADAPTERS_MODULE],
    replaceBackoffMs: 50,
    ...settings,
  });
  open.push(runner);
  return runner;
}

async function engineOn(runner: ModelRunner, model: string, batches: number[] = []): Promise<InferenceEngine> {
  const engine = new InferenceEngine(runner, { onBatch: (_m, _v, items) => batches.push(items) });
  open.push(engine);
  await engine.load([repo.resolve(model)]);
  return engine;
}

describe("run timeouts", () => {
  it("a run past the model's timeoutMs answers inference_timeout (retriable); a run waiting behind it succeeds on the replacement thread", async () => {
    const runner = pool(1);
    await runner.load([repo.resolve("hang")]);
    const exits: Array<{ reason: string; busy: boolean }> = [];
    runner.on("thread-exit", (e) => exits.push(e));
    const replaced = once(runner, "thread-ready");
    // One thread: the second run waits in the pool's FIFO while the first hangs.
    const [hung, waiting] = await Promise.all([
      runner.run("hang@1", [lookup(2), lookup(0)]),
      runner.run("hang@1", [lookup(1)]),
    ]);
    expect(hung).toEqual(
      [0, 1].map(() => ({
        ok: false,
        code: "inference_timeout",
        retriable: true,
        message: expect.stringMatching(/500 ms/),
      })),
    );
    expect(values(waiting[0])).toEqual(LOOKUP_TABLE[1]);
    expect(exits).toEqual([
      { threadId: expect.any(Number), reason: expect.stringMatching(/timed out after 500 ms/), busy: true },
    ]);
    expect((await replaced)[0]).toMatchObject({ replacement: true });
    expect(runner.readyThreads).toBe(1);
  });

  it("the timeout override wins over the manifest's timeoutMs", async () => {
    const engine = await engineOn(pool(1, { timeoutOverrideMs: 150 }), "hang");
    const outcome = await engine.infer("hang", "1", lookup(2));
    expect(outcome).toMatchObject({
      ok: false,
      code: "inference_timeout",
      retriable: true,
      message: expect.stringMatching(/150 ms/),
    });
    expect(values(await engine.infer("hang", "1", lookup(0)))).toEqual(LOOKUP_TABLE[0]);
  });
});

describe("threads that die", () => {
  it("a crashing item in a batch fails alone with inference_crashed while its batch-mates succeed", async () => {
    const runner = pool(1);
    const batches: number[] = [];
    const engine = await engineOn(runner, "crash", batches);
    let exits = 0;
    runner.on("thread-exit", () => exits++);
    const indexes = [0, 1, 2, 0, 1];
    const outcomes = await Promise.all(indexes.map((i) => engine.infer("crash", "1", lookup(i))));
    indexes.forEach((index, k) => {
      if (index === 2) expect(outcomes[k]).toMatchObject({ ok: false, code: "inference_crashed", retriable: true });
      else expect(values(outcomes[k])).toEqual(LOOKUP_TABLE[index]);
    });
    // The items did run as one batch (the batcher gathers them within maxQueueDelayMs), which
    // killed the thread once; the culprit killed a replacement a second time, running alone.
    expect(batches).toEqual([5]);
    expect(exits).toBe(2);
    await sleepUntil(() => runner.readyThreads === 1);
    expect(values(await engine.infer("crash", "1", lookup(1)))).toEqual(LOOKUP_TABLE[1]);
  });

  it("a thread that dies while idle is replaced", async () => {
    const runner = pool(2);
    const engine = await engineOn(runner, "crash");
    const exits: Array<{ busy: boolean }> = [];
    runner.on("thread-exit", (e) => exits.push(e));
    let replacements = 0;
    runner.on("thread-ready", (e) => void (e.replacement && replacements++));
    exitFixtureThreads("crash");
    await sleepUntil(() => replacements === 2, { message: "both idle threads replaced" });
    expect(exits).toEqual([
      { threadId: expect.any(Number), reason: "exit code 1", busy: false },
      expect.objectContaining({ busy: false }),
    ]);
    expect(runner.readyThreads).toBe(2);
    const outcomes = await Promise.all([0, 1, 0].map((i) => engine.infer("crash", "1", lookup(i))));
    expect(outcomes.map(values)).toEqual([LOOKUP_TABLE[0], LOOKUP_TABLE[1], LOOKUP_TABLE[0]]);
  });

  it("while a replacement cannot load, runs fail inference_unavailable (retriable); they succeed once it loads", async () => {
    const runner = pool(1);
    const engine = await engineOn(runner, "slow");
    const file = path.join(fixtures.dir, "slow", "lookup.onnx");
    fs.renameSync(file, `${file}.away`);
    try {
      const failed = once(runner, "replacement-failed");
      exitFixtureThreads("slow");
      expect((await failed)[0].error.message).toMatch(/does not exist/);
      expect(runner.readyThreads).toBe(0);
      expect(await engine.infer("slow", "1", lookup(0))).toMatchObject({
        ok: false,
        code: "inference_unavailable",
        retriable: true,
      });
    } finally {
      fs.renameSync(`${file}.away`, file);
    }
    await once(runner, "thread-ready");
    expect(values(await engine.infer("slow", "1", lookup(1)))).toEqual(LOOKUP_TABLE[1]);
  });
});

describe("close()", () => {
  it("settles the run in flight and the runs waiting, and refuses new ones", async () => {
    const runner = pool(1);
    await runner.load([repo.resolve("slow")]);
    const pending = Promise.allSettled([runner.run("slow@1", [lookup(2)]), runner.run("slow@1", [lookup(0)])]);
    await runner.close();
    const settled = [...(await pending), ...(await Promise.allSettled([runner.run("slow@1", [lookup(0)])]))];
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
    // Rejected by close, not answered by the 1.5 s sleep finishing.
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ code: "runner_closed" });
    expect(runner.readyThreads).toBe(0);
  });
});

describe("adapter modules and partial loads", () => {
  it("the main thread's runner imports adapter modules before loading", async () => {
    const engine = await engineOn(new InProcessRunner({ adapterModules: [FIXTURE_ADAPTERS_MODULE] }), "slow");
    expect(values(await engine.infer("slow", "1", lookup(2)))).toEqual(LOOKUP_TABLE[2]);
  });

  it("a partial load serves the models that loaded and reports the others; a strict load fails", async () => {
    const good = repo.resolve("lookup");
    const ghost = {
      ...good,
      manifest: { ...good.manifest, name: "ghost" },
      spec: { version: "1", file: "missing.onnx" },
    };
    const failedToLoad: string[] = [];
    const engine = new InferenceEngine(new InProcessRunner(), {
      onLoadFailed: (model, _v, err) => failedToLoad.push(`${model}: ${err.message}`),
    });
    open.push(engine);
    const report = await engine.load([good, ghost], { partial: true });
    expect(report.served).toEqual(["lookup"]);
    expect(failedToLoad).toEqual([expect.stringMatching(/^ghost: .*missing\.onnx does not exist/)]);
    expect(values(await engine.infer("lookup", "1", lookup(1)))).toEqual(LOOKUP_TABLE[1]);
    expect(await engine.infer("ghost", "1", lookup(1))).toMatchObject({ ok: false, code: "model_not_served" });

    const strict = new InferenceEngine(new InProcessRunner());
    open.push(strict);
    await expect(strict.load([good, ghost])).rejects.toMatchObject({ code: "model_file_missing" });
  });

  it("an adapter module that does not import fails the load, partial or not", async () => {
    const engine = new InferenceEngine(
      new ThreadPoolRunner(1, { adapterModules: [path.join(fixtures.dir, "missing.ts")] }),
    );
    open.push(engine);
    await expect(engine.load([repo.resolve("lookup")], { partial: true })).rejects.toMatchObject({
      code: "adapter_module_failed",
    });
  });
});
