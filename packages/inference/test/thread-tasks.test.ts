import path from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ModelRepository } from "@inferline/runtime";
import { createTestModelRepository, FIXTURE_ADAPTERS_MODULE, LOOKUP_TABLE } from "@inferline/testing";
import { ThreadPoolRunner, type ThreadPoolSettings } from "../src/index.ts";
import type { LookupTaskAnswer, LookupTaskRequest } from "./support/lookup-task.ts";

// ThreadPoolRunner.runTask on real pool threads and onnxruntime: a caller's task module runs
// beside the thread's model, under the pool's timeouts, thread replacement and crash handling.
// The fault models answer like `lookup` except for index 2: it hangs (hang, timeoutMs 500) or
// ends its thread (crash).

const TASK = fileURLToPath(new URL("./support/lookup-task.ts", import.meta.url));

let fixtures: { dir: string; remove(): void };
let repo: ModelRepository;
const open: ThreadPoolRunner[] = [];

beforeAll(() => {
  fixtures = createTestModelRepository({ faultModels: true });
  repo = ModelRepository.load(fixtures.dir);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
afterAll(() => fixtures?.remove());

async function pool(model: string, settings: ThreadPoolSettings = {}, threads = 1): Promise<ThreadPoolRunner> {
  const runner = new ThreadPoolRunner(threads, {
    adapterModules: [FIXTURE_ADAPTERS_MODULE],
    replaceBackoffMs: 50,
    task: { module: TASK, data: { run: "r1" } },
    ...settings,
  });
  open.push(runner);
  expect(await runner.load([repo.resolve(model)])).toEqual([]);
  return runner;
}

const task = (runner: ThreadPoolRunner, key: string, request: LookupTaskRequest, transfer: ArrayBuffer[] = []) =>
  runner.runTask<LookupTaskAnswer>(key, request, transfer);

describe("runTask", () => {
  it("runs the task beside the thread's model with the pool's data; buffers listed to transfer move, answers come back as typed arrays", async () => {
    const runner = await pool("lookup", {}, 2);
    const buffer = new ArrayBuffer(4096);
    const answer = await task(runner, "lookup@1", { index: 1, buffer }, [buffer]);
    expect(buffer.byteLength).toBe(0); // moved to the thread, not copied
    expect(answer).toEqual({ values: Float32Array.from(LOOKUP_TABLE[1]!), data: { run: "r1" }, receivedBytes: 4096 });
    const many = await Promise.all([0, 1, 2, 0].map((index) => task(runner, "lookup@1", { index })));
    expect(many.map((a) => [...a.values])).toEqual([0, 1, 2, 0].map((i) => LOOKUP_TABLE[i]));
  });

  it("a task that throws rejects with its message; the thread stays", async () => {
    const runner = await pool("lookup");
    await expect(task(runner, "lookup@1", { index: 0, fail: "no such row" })).rejects.toThrow("no such row");
    expect(runner.readyThreads).toBe(1);
    expect([...(await task(runner, "lookup@1", { index: 2 })).values]).toEqual(LOOKUP_TABLE[2]);
  });

  it("a run past the model's timeoutMs rejects inference_timeout (retriable); the run waiting behind it succeeds on the replacement thread", async () => {
    const runner = await pool("hang");
    const exits: Array<{ reason: string; busy: boolean }> = [];
    runner.on("thread-exit", (e) => exits.push(e));
    const [hung, waiting] = await Promise.allSettled([
      task(runner, "hang@1", { index: 2 }),
      task(runner, "hang@1", { index: 1 }),
    ]);
    expect(hung).toMatchObject({
      status: "rejected",
      reason: { code: "inference_timeout", retriable: true, message: expect.stringMatching(/500 ms/) },
    });
    expect(waiting.status === "fulfilled" && [...waiting.value.values]).toEqual(LOOKUP_TABLE[1]);
    expect(exits).toEqual([
      { threadId: expect.any(Number), reason: expect.stringMatching(/timed out after 500 ms/), busy: true },
    ]);
  });

  it("a run that kills its thread rejects inference_crashed (retriable), once, and the thread is replaced", async () => {
    const runner = await pool("crash");
    let exits = 0;
    runner.on("thread-exit", () => exits++);
    const replaced = once(runner, "thread-ready");
    await expect(task(runner, "crash@1", { index: 2 })).rejects.toMatchObject({
      code: "inference_crashed",
      retriable: true,
      message: expect.stringMatching(/exit code 1/),
    });
    expect((await replaced)[0]).toMatchObject({ replacement: true });
    expect(exits).toBe(1); // not run again by the pool: the caller decides
    expect([...(await task(runner, "crash@1", { index: 0 })).values]).toEqual(LOOKUP_TABLE[0]);
  });

  it("the pool's run timeout override applies to tasks too", async () => {
    const runner = await pool("hang", { timeoutOverrideMs: 150 });
    await expect(task(runner, "hang@1", { index: 2 })).rejects.toMatchObject({
      code: "inference_timeout",
      message: expect.stringMatching(/150 ms/),
    });
  });
});

describe("prefetch", () => {
  it("sends a busy thread its next run ahead of time; runs still answer in order, each its own", async () => {
    const runner = await pool("lookup", { prefetch: 1 });
    const answers = await Promise.all([0, 1, 2, 1, 0, 2].map((index) => task(runner, "lookup@1", { index })));
    expect(answers.map((a) => [...a.values])).toEqual([0, 1, 2, 1, 0, 2].map((i) => LOOKUP_TABLE[i]));
  });

  it("a run waiting behind one that times out or kills its thread never started: it runs on the replacement and succeeds", async () => {
    for (const [model, code] of [
      ["hang", "inference_timeout"],
      ["crash", "inference_crashed"],
    ] as const) {
      const runner = await pool(model, { prefetch: 1 });
      const [bad, behind] = await Promise.allSettled([
        task(runner, `${model}@1`, { index: 2 }),
        task(runner, `${model}@1`, { index: 1 }),
      ]);
      expect(bad).toMatchObject({ status: "rejected", reason: { code } });
      expect(behind.status === "fulfilled" && [...behind.value.values]).toEqual(LOOKUP_TABLE[1]);
    }
  });

  it("item runs keep their crash isolation with prefetch", async () => {
    const runner = await pool("crash", { prefetch: 1 });
    const lookup = (index: number) => ({
      inputs: [{ name: "index", datatype: "INT64" as const, shape: [1, 1], data: [index] }],
    });
    const [batch, next] = await Promise.all([
      runner.run("crash@1", [lookup(0), lookup(2), lookup(1)]),
      runner.run("crash@1", [lookup(1)]),
    ]);
    expect(batch.map((o) => (o.ok ? o.result.outputs[0]!.data : o.code))).toEqual([
      LOOKUP_TABLE[0],
      "inference_crashed",
      LOOKUP_TABLE[1],
    ]);
    expect(next[0]?.ok && next[0].result.outputs[0]!.data).toEqual(LOOKUP_TABLE[1]);
  });
});

describe("task modules", () => {
  it("a pool without a task refuses runTask", async () => {
    const runner = new ThreadPoolRunner(1);
    open.push(runner);
    await runner.load([repo.resolve("lookup")]);
    await expect(runner.runTask("lookup@1", { index: 0 })).rejects.toThrow(/no thread task/);
  });

  it("a task module that does not import, or exports no createThreadTask, fails the load", async () => {
    for (const module of [path.join(fixtures.dir, "missing-task.ts"), FIXTURE_ADAPTERS_MODULE]) {
      const runner = new ThreadPoolRunner(1, { adapterModules: [FIXTURE_ADAPTERS_MODULE], task: { module } });
      open.push(runner);
      await expect(runner.load([repo.resolve("lookup")])).rejects.toMatchObject({ code: "task_module_failed" });
    }
  });
});
