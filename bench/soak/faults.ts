import type { PgCluster, RedisServer } from "@inferline/testing";
import type { Supervised } from "./processes.ts";

/** One fault as it happened: from when it began to when what it broke was back. */
export interface FaultRecord {
  name: string;
  start: number;
  end: number;
}

export interface Cast {
  api: Supervised;
  /** The workers that run throughout. */
  workers: Supervised[];
  /** A worker started only while another is frozen (compound mix). */
  spare: Supervised;
  redis: RedisServer;
  cluster: PgCluster;
  /** Resolves once the API answers /healthz (after its restart). */
  apiUp(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** Runs faults until `running()` turns false; returns what happened. */
export type FaultMix = (
  cast: Cast,
  running: () => boolean,
  log: (m: string) => void,
  submitMs: number,
) => Promise<FaultRecord[]>;

async function timed(
  name: string,
  records: FaultRecord[],
  log: (m: string) => void,
  act: () => Promise<void>,
): Promise<void> {
  const start = Date.now();
  log(`fault: ${name}`);
  try {
    await act();
  } catch (err) {
    log(`fault failed: ${name}: ${(err as Error).message}`);
  }
  records.push({ name, start, end: Date.now() });
}

const killRedis = (c: Cast) => async () => {
  await c.redis.kill();
  await sleep(1000);
  await c.redis.start();
};

const killApi = (c: Cast) => async () => {
  c.api.kill("SIGKILL");
  await c.apiUp();
};

const restartPostgres = (c: Cast, mode: "fast" | "immediate") => async () => {
  await c.cluster.stop(mode);
  await sleep(1000);
  await c.cluster.start();
};

/** One fault every `everyMs`, in turn: a worker killed, Redis killed, PostgreSQL restarted, the API killed, a worker frozen past its lock. */
export function classicMix(everyMs: number, lockMs: number): FaultMix {
  return async (cast, running, log) => {
    const records: FaultRecord[] = [];
    const w = cast.workers;
    const actions: Array<[string, () => Promise<void>]> = [
      ["SIGKILL a worker", async () => w[records.length % w.length]!.kill("SIGKILL")],
      ["SIGKILL Redis (restarted empty)", killRedis(cast)],
      ["restart PostgreSQL (fast)", restartPostgres(cast, "fast")],
      ["SIGKILL the API", killApi(cast)],
      [
        "SIGSTOP a worker past its lock",
        async () => {
          const worker = w[(records.length + 1) % w.length]!;
          worker.kill("SIGSTOP");
          await sleep(lockMs * 3);
          worker.kill("SIGCONT");
        },
      ],
    ];
    for (let i = 0; running(); i++) {
      await sleep(everyMs);
      if (!running()) break;
      const [name, act] = actions[i % actions.length]!;
      await timed(name, records, log, act);
    }
    return records;
  };
}

/**
 * Every fault at once, as a hard day brings them: a worker SIGKILLed every 3-6 s (restarted 0.5-2 s
 * later by its supervisor) throughout, and on top, at fixed points of the submit phase: Redis
 * SIGKILLed (restarted empty), the API SIGKILLed, PostgreSQL restarted in immediate mode, a worker
 * SIGTERMed, Redis SIGKILLed again, and a worker frozen with SIGSTOP for 40 s while a third worker
 * runs.
 */
export const compoundMix: FaultMix = async (cast, running, log, submitMs) => {
  const records: FaultRecord[] = [];
  let frozen: Supervised | undefined;
  const killer = (async () => {
    while (running()) {
      await sleep(between(3000, 6000));
      const candidates = cast.workers.filter((w) => w !== frozen && w.running);
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      if (!running() || !victim) continue;
      const start = Date.now();
      victim.kill("SIGKILL");
      records.push({ name: "SIGKILL a worker (background)", start, end: start });
    }
  })();
  const freeze = async () => {
    const worker = cast.workers.find((w) => w.running)!;
    frozen = worker;
    cast.spare.start();
    worker.kill("SIGSTOP");
    await sleep(40_000);
    worker.kill("SIGCONT");
    frozen = undefined;
    await cast.spare.stop();
  };
  const plan: Array<[number, string, () => Promise<void>]> = [
    [0.1, "SIGKILL Redis (restarted empty)", killRedis(cast)],
    [0.25, "SIGKILL the API", killApi(cast)],
    [0.4, "restart PostgreSQL (immediate)", restartPostgres(cast, "immediate")],
    [0.55, "SIGTERM a worker", async () => cast.workers.find((w) => w.running && w !== frozen)?.kill("SIGTERM")],
    [0.65, "SIGKILL Redis again (restarted empty)", killRedis(cast)],
    [0.75, "SIGSTOP a worker for 40 s (a third worker meanwhile)", freeze],
  ];
  const t0 = Date.now();
  for (const [at, name, act] of plan) {
    await sleep(Math.max(0, t0 + at * submitMs - Date.now()));
    await timed(name, records, log, act);
  }
  await killer;
  return records;
};
