import crypto from "node:crypto";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import { promisify } from "node:util";
import { migrate } from "@inferline/db";
import { freePort } from "./free-port.ts";

const run = promisify(execFile);

/** Clusters this helper creates carry their creation time, so a killed run's leftovers can be dropped later. */
const NAME = /^inferline_t(\d{13})_[0-9a-f]+$/;
const STALE_MS = 30 * 60 * 1000;

/**
 * A PostgreSQL cluster of a test's own (Debian's postgresql-common tools, run as root), on a free
 * loopback port with trust auth, that the test may stop, restart and freeze without touching the
 * machine's main server. `remove()` drops it and its data.
 */
export interface PgCluster {
  readonly name: string;
  readonly port: number;
  /** The URL of a database on this cluster (default `postgres`). */
  url(database?: string): string;
  /** Creates a database and applies the project's migrations to it; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  start(): Promise<void>;
  /** `fast` (the default) terminates every session, so connected clients get 57P01; `immediate` aborts without a checkpoint. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Freezes the postmaster and every backend with SIGSTOP: sockets accept, nothing answers (a hung server). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  remove(): Promise<void>;
}

/** The newest PostgreSQL major installed (Debian layout), or PG_CLUSTER_VERSION. */
function postgresVersion(): string {
  if (process.env.PG_CLUSTER_VERSION) return process.env.PG_CLUSTER_VERSION;
  const versions = fs.existsSync("/usr/lib/postgresql")
    ? fs.readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v))
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest)
    throw new Error(
      "no PostgreSQL server under /usr/lib/postgresql: install postgresql (Debian's package) to run outage tests",
    );
  return newest;
}

/** Sends a signal to a process that may have exited meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * pg_ctlcluster, with no pipes attached: the postmaster it starts inherits its stdio, and
 * execFile would wait for those pipes to close, that is for the server to stop.
 */
function ctl(version: string, name: string, action: string, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("pg_ctlcluster", ["--skip-systemctl-redirect", version, name, action, ...args], {
      stdio: "ignore",
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`pg_ctlcluster ${action} ${name} exited with ${code}`)),
    );
  });
}

/** The postmaster and its children (empty when the cluster is down). */
async function clusterPids(version: string, name: string): Promise<number[]> {
  const { stdout } = await run("pg_lsclusters", ["-h", version, name]);
  const pidFile = `${stdout.trim().split(/\s+/)[5]}/postmaster.pid`;
  if (!fs.existsSync(pidFile)) return [];
  const postmaster = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
  const { stdout: children } = await run("pgrep", ["-P", String(postmaster)]).catch(() => ({ stdout: "" }));
  return [postmaster, ...children.split("\n").filter(Boolean).map(Number)];
}

/** Thaws (a frozen server does not stop) and drops a cluster. */
async function drop(version: string, name: string): Promise<void> {
  for (const pid of await clusterPids(version, name).catch(() => [])) signal(pid, "SIGCONT");
  await run("pg_dropcluster", ["--stop", version, name]);
}

/** Drops clusters of this helper left by runs that were killed (created more than STALE_MS ago). */
async function dropStaleClusters(version: string): Promise<void> {
  const { stdout } = await run("pg_lsclusters", ["-h"]);
  for (const line of stdout.split("\n")) {
    const [v, name] = line.trim().split(/\s+/);
    const created = Number(NAME.exec(name ?? "")?.[1]);
    if (v === version && created && Date.now() - created > STALE_MS) await drop(v, name!).catch(() => {});
  }
}

/**
 * Creates and starts a cluster (about 3 s here: initdb, then a start that waits until it accepts
 * connections). fsync is off (the data is thrown away; an OS that does not crash keeps what was
 * written). `crashSafe`: commits wait for their WAL to be written, as PostgreSQL's default does,
 * so an immediate shutdown (a crash of PostgreSQL alone) loses no commit a client was told of;
 * without it commits return before that, which outage tests that never crash it do not need.
 */
export async function createPgCluster(options: { crashSafe?: boolean } = {}): Promise<PgCluster> {
  const version = postgresVersion();
  await dropStaleClusters(version);
  const name = `inferline_t${Date.now()}_${crypto.randomBytes(3).toString("hex")}`;
  const port = await freePort();
  const commit = `synchronous_commit=${options.crashSafe ? "on" : "off"}`;
  await run("pg_createcluster", [
    version,
    name,
    "-p",
    String(port),
    "--start-conf=manual",
    "-o",
    "fsync=off",
    "-o",
    commit,
    "-o",
    "full_page_writes=off",
    "--",
    "--auth=trust",
  ]);
  let paused: number[] = [];
  const cluster: PgCluster = {
    name,
    port,
    url: (database = "postgres") => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(db = `inferline_${crypto.randomBytes(4).toString("hex")}`) {
      const url = cluster.url(db);
      await migrate(url);
      return url;
    },
    start: () => ctl(version, name, "start"),
    stop: (mode = "fast") => ctl(version, name, "stop", "-m", mode),
    async pause() {
      paused = await clusterPids(version, name);
      for (const pid of paused) signal(pid, "SIGSTOP");
    },
    async resume() {
      for (const pid of paused) signal(pid, "SIGCONT");
      paused = [];
    },
    async remove() {
      paused = [];
      await drop(version, name);
    },
  };
  try {
    await cluster.start();
  } catch (err) {
    await drop(version, name).catch(() => {});
    throw err;
  }
  return cluster;
}
