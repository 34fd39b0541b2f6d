/**
 * Where the milliseconds of the latency scenario go: joins the hop trace that the API and the
 * worker write when INFERLINE_TRACE_HOPS is set (@inferline/runtime's HopTrace: `jobId,hop,epochMs`
 * lines, one file per process) with the client's own timestamps of the same jobs, and gives each
 * hop's p50/p90/p99. All processes run on this machine, so their clocks are one clock
 * (performance.timeOrigin + performance.now(), sub-millisecond).
 */
import fs from "node:fs";
import path from "node:path";

/** The client's times of one job, epoch ms: POST sent, its 202 read, the long-poll's answer read. */
export interface ClientTimes {
  send: number;
  posted: number;
  done: number;
}

/** The hops in the order a job passes them: [label, from mark, to mark]. */
export const HOPS: ReadonlyArray<readonly [string, string, string]> = [
  ["HTTP in: client → POST handler (socket, routing, JSON parse, auth)", "client.send", "api.in"],
  ["validate, depth and quota guards", "api.in", "api.accepted"],
  ["insert (group commit)", "api.accepted", "api.stored"],
  ["fair-share rank (started beside the insert)", "api.stored", "api.adding"],
  ["addBulk → worker pick-up (BullMQ)", "api.adding", "worker.picked"],
  ["claim (UPDATE … RETURNING)", "worker.picked", "worker.claimed"],
  ["batch dispatch (maxQueueDelayMs) + run", "worker.claimed", "worker.inferred"],
  ["result commit (group commit) + publish → API wakes the long-poll", "worker.inferred", "api.woken"],
  ["long-poll re-read", "api.woken", "api.read"],
  ["answer → client (serialise, socket, parse)", "api.read", "client.done"],
];

/**
 * Beside the path above (marks of two processes whose event loops run on their own: the API may
 * see the addBulk reply after the worker took the entry, the worker its commit after the API woke).
 */
export const SIDE: ReadonlyArray<readonly [string, string, string]> = [
  ["(beside) addBulk reply seen by the API", "api.adding", "api.enqueued"],
  ["(beside) 202 → client", "api.enqueued", "client.posted"],
  ["(beside) result commit + publish, as the worker saw it", "worker.inferred", "worker.written"],
  ["(beside) GET sent → job finished on the worker", "client.posted", "worker.written"],
  ["whole, as the client saw it", "client.send", "client.done"],
];

export interface HopRow {
  hop: string;
  from: string;
  to: string;
  n: number;
  p50: number;
  p90: number;
  p99: number;
}

/** Each job's first time at each hop, from every file in `dir`. */
export function readHops(dir: string): Map<string, Record<string, number>> {
  const byJob = new Map<string, Record<string, number>>();
  if (!fs.existsSync(dir)) return byJob;
  for (const file of fs.readdirSync(dir)) {
    for (const line of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
      const [id, hop, t] = line.split(",");
      if (!id || !hop || !t) continue;
      const marks = byJob.get(id) ?? {};
      const at = Number(t);
      if (marks[hop] === undefined || at < marks[hop]) marks[hop] = at;
      byJob.set(id, marks);
    }
  }
  return byJob;
}

const q = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * The hops of the client's jobs that the trace saw. `wokenShare`: jobs whose long-poll waited for
 * the worker's message (the others were finished at the GET's first read).
 */
export function breakdown(client: Map<string, ClientTimes>, traced: Map<string, Record<string, number>>) {
  const jobs: Record<string, number>[] = [];
  for (const [id, c] of client) {
    const marks = traced.get(id);
    if (marks) jobs.push({ ...marks, "client.send": c.send, "client.posted": c.posted, "client.done": c.done });
  }
  const row = ([hop, from, to]: readonly [string, string, string]): HopRow => {
    const d = jobs.filter((j) => j[from] !== undefined && j[to] !== undefined).map((j) => j[to]! - j[from]!);
    d.sort((a, b) => a - b);
    return { hop, from, to, n: d.length, p50: r2(q(d, 0.5)), p90: r2(q(d, 0.9)), p99: r2(q(d, 0.99)) };
  };
  const woken = jobs.filter((j) => j["api.woken"] !== undefined).length;
  return {
    tracedJobs: jobs.length,
    wokenShare: jobs.length ? r2(woken / jobs.length) : NaN,
    hops: HOPS.map(row),
    side: SIDE.map(row),
  };
}

export type Breakdown = ReturnType<typeof breakdown>;

/** The breakdown as a Markdown table. */
export function breakdownTable(b: Breakdown, extra: string[] = []): string {
  const f = (x: number) => (Number.isNaN(x) ? "—" : x.toFixed(2));
  const lines = ["| hop | p50 ms | p90 ms | p99 ms | jobs |", "|---|--:|--:|--:|--:|"];
  for (const r of [...b.hops, ...b.side]) lines.push(`| ${r.hop} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${r.n} |`);
  const sum = b.hops.reduce((s, r) => s + (Number.isNaN(r.p50) ? 0 : r.p50), 0);
  lines.push(
    "",
    `${b.tracedJobs} traced jobs; ${Math.round(b.wokenShare * 100)}% waited for the worker's message; sum of the path's p50s ${sum.toFixed(2)} ms`,
    ...extra,
  );
  return lines.join("\n");
}
