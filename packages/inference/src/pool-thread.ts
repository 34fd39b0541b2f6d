import { parentPort, workerData, type MessagePort, type TransferListItem } from "node:worker_threads";
import { InferlineError } from "@inferline/contracts";
import { type ResolvedModel } from "@inferline/runtime";
import type { InferenceItem } from "./adapter.ts";
import type { ItemOutcome } from "./loaded-model.ts";
import { InProcessRunner, modelKey, type RunnerSettings } from "./runner.ts";
import { importThreadTask, type ThreadTask, type ThreadTaskSpec } from "./thread-task.ts";
import "./builtin-adapters.ts";

/** What a pool thread is started with (structured-cloneable: no logger). */
export interface ThreadData {
  models: ResolvedModel[];
  settings: Pick<RunnerSettings, "intraOpThreads" | "adapterModules"> & { task?: ThreadTaskSpec };
}

/** Failures of a thread's load: the model keys that did not load, with why. */
type LoadFailures = Array<{ key: string; code?: string; message: string }>;

export type ThreadRequest =
  | { type: "run"; id: number; key: string; items: InferenceItem[] }
  | { type: "task"; id: number; key: string; payload: unknown };
export type ThreadReply =
  /** Loaded; `failed` lists the model keys that did not load, with why. */
  | { type: "ready"; failed: LoadFailures }
  /** Nothing could load (an adapter or task module failed to import). */
  | { type: "load-error"; code?: string; message: string }
  | { type: "result"; id: number; outcomes: ItemOutcome[] }
  | { type: "task-result"; id: number; value: unknown }
  | { type: "run-error"; id: number; message: string };

if (parentPort) {
  const port = parentPort;
  const { models, settings } = workerData as ThreadData;
  const runner = new InProcessRunner(settings);
  const tasks = new Map<string, ThreadTask>();
  try {
    const failures = await runner.load(models);
    const failed: LoadFailures = failures.map((f) => ({
      key: modelKey(f.model.manifest.name, f.model.version),
      code: codeOf(f.error),
      message: f.error.message,
    }));
    if (settings.task) failed.push(...(await createTasks(runner, models, settings.task, tasks)));
    port.postMessage({ type: "ready", failed } satisfies ThreadReply);
  } catch (err) {
    port.postMessage({ type: "load-error", code: codeOf(err), message: (err as Error).message } satisfies ThreadReply);
  }
  // Runs go one after another, in the order sent: a pool that prefetches sends the next run
  // while this one is still running, to wait here.
  let queue = Promise.resolve();
  port.on("message", (m: ThreadRequest) => {
    queue = queue.then(() => (m.type === "task" ? runTask(port, tasks, m) : runItems(port, runner, m)));
  });
}

/** The pool's task for every model that loaded; answers the models whose task could not be made. */
async function createTasks(
  runner: InProcessRunner,
  models: ResolvedModel[],
  spec: ThreadTaskSpec,
  tasks: Map<string, ThreadTask>,
): Promise<LoadFailures> {
  const factory = await importThreadTask(spec);
  const more: LoadFailures = [];
  for (const m of models) {
    const key = modelKey(m.manifest.name, m.version);
    const loaded = runner.loaded(key);
    if (!loaded) continue; // it failed to load
    try {
      tasks.set(key, await factory(loaded, spec.data));
    } catch (err) {
      more.push({
        key,
        code: codeOf(err) ?? "task_failed",
        message: `model ${key}: its thread task failed to start: ${(err as Error).message}`,
      });
    }
  }
  return more;
}

/** Runs a batch of items and posts their outcomes; never rejects. */
function runItems(
  port: MessagePort,
  runner: InProcessRunner,
  m: Extract<ThreadRequest, { type: "run" }>,
): Promise<void> {
  return runner.run(m.key, m.items).then(
    (outcomes) => reply(port, m.id, { type: "result", id: m.id, outcomes }),
    (err: unknown) => reply(port, m.id, { type: "run-error", id: m.id, message: (err as Error).message }),
  );
}

/** Runs the thread task and posts its answer (its buffers transferred) or its error; never rejects. */
function runTask(
  port: MessagePort,
  tasks: Map<string, ThreadTask>,
  m: Extract<ThreadRequest, { type: "task" }>,
): Promise<void> {
  const task = tasks.get(m.key);
  return Promise.resolve()
    .then(() => {
      if (!task) throw new Error(`no thread task for ${m.key}`);
      return task.run(m.payload);
    })
    .then(
      (answer) => reply(port, m.id, { type: "task-result", id: m.id, value: answer.value }, answer.transfer),
      (err: unknown) => reply(port, m.id, { type: "run-error", id: m.id, message: (err as Error).message }),
    );
}

/** Posts a run's answer; one that cannot be sent (not cloneable) becomes the run's error. */
function reply(port: MessagePort, id: number, answer: ThreadReply, transfer: TransferListItem[] = []): void {
  try {
    port.postMessage(answer, transfer);
  } catch (err) {
    port.postMessage({
      type: "run-error",
      id,
      message: `the run's answer could not be sent: ${(err as Error).message}`,
    } satisfies ThreadReply);
  }
}

function codeOf(err: unknown): string | undefined {
  return err instanceof InferlineError ? err.code : undefined;
}
