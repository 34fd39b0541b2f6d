// Test-only adapters that misbehave on purpose. Nothing imports this module but the runners, and
// only when INFERENCE_ADAPTER_MODULES (the `adapterModules` runner setting) names it: see
// FIXTURE_ADAPTERS_MODULE in test-models.ts. Each wraps the default adapter, so a model built on
// the `lookup` ONNX behaves exactly like `lookup`, except for an item whose first `index` is 2.
//
// It imports @inferline/inference, which @inferline/testing does not declare (there would be no
// cycle: inference does not depend on testing; but declaring it needs an install): it resolves
// through the workspace root, which depends on @inferline/inference, and it only ever runs inside
// a process that serves models. The index of @inferline/testing never imports this module, so the
// tests that import @inferline/testing (the API's among them) do not load onnxruntime through it.
// The adapter registry lives on globalThis, so registering works whichever copy this resolves to.
import { BroadcastChannel, isMainThread } from "node:worker_threads";
import type { InferenceItem, ModelAdapter } from "@inferline/inference";
import { defaultAdapter, registerAdapter } from "@inferline/inference";

/** Must match FIXTURE_CHANNEL in test-models.ts (kept apart so tests need not load this module). */
const FIXTURE_CHANNEL = "inferline-test-fixture-threads";

/** The first element of the item's `index` input is 2. */
function poisoned(item: InferenceItem): boolean {
  const index = item.inputs.find((t) => t.name === "index") ?? item.inputs[0];
  return Number(index?.data[0]) === 2;
}

type Misbehaviour = () => Promise<void> | void;

const misbehaviours: Record<string, Misbehaviour> = {
  /** Never returns and never yields: only terminating the thread ends it. */
  "test-hang": () => {
    for (;;) {
      // busy
    }
  },
  /** In a worker thread, process.exit ends only that thread (exit code 1). */
  "test-crash": () => process.exit(1),
  /** Slow without blocking the event loop. */
  "test-sleep": () => new Promise<void>((resolve) => setTimeout(resolve, 1500)),
  /** Kills the whole process, whatever thread it runs on (a worker process that dies mid-job). */
  "test-kill-process": () => void process.kill(process.pid, "SIGKILL"),
};

/** Names of the models this thread built a fixture adapter for. */
const models = new Set<string>();

for (const [name, misbehave] of Object.entries(misbehaviours)) {
  registerAdapter(name, (manifest): ModelAdapter => {
    models.add(manifest.name);
    const inner = defaultAdapter(manifest);
    return {
      ...inner,
      async prepare(item) {
        if (poisoned(item)) await misbehave();
        return inner.prepare(item);
      },
    };
  });
}

/** Milliseconds each row of the `costly` model takes, one row after another. */
const COSTLY_ROW_MS = 20;
let costlyTurn: Promise<void> = Promise.resolve();

// `costly` answers as `lookup`, but its rows take COSTLY_ROW_MS each, one after another, as on a
// busy core (without using one): a slot's hold grows with the rows it runs.
registerAdapter("test-cost", (manifest): ModelAdapter => {
  models.add(manifest.name);
  const inner = defaultAdapter(manifest);
  return {
    ...inner,
    async prepare(item) {
      const turn = costlyTurn.then(() => new Promise<void>((resolve) => setTimeout(resolve, COSTLY_ROW_MS)));
      costlyTurn = turn;
      await turn;
      return inner.prepare(item);
    },
  };
});

// A test can end the pool threads of one of these models while they are idle: see
// exitFixtureThreads in test-models.ts. Never on the main thread, which is the whole process.
if (!isMainThread) {
  const channel = new BroadcastChannel(FIXTURE_CHANNEL);
  channel.unref();
  channel.onmessage = (event: unknown) => {
    const exit = (event as { data?: { exit?: unknown } }).data?.exit;
    if (typeof exit === "string" && models.has(exit)) process.exit(1);
  };
}
