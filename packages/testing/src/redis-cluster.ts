import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "./free-port.ts";
import { sleepUntil } from "./sleep-until.ts";

const run = promisify(execFile);

/**
 * A Redis Cluster of a test's own: three masters (no replicas) on free loopback ports, without
 * persistence, as child processes, in a temporary directory that `remove()` deletes.
 */
export interface RedisCluster {
  readonly ports: readonly number[];
  /** The nodes as REDIS_CLUSTER_NODES takes them: `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`. */
  readonly nodes: string;
  /** A plain connection to each node, for assertions (the caller disconnects them). */
  nodeClients(): Redis[];
  remove(): Promise<void>;
}

const MASTERS = 3;

/** Starts the nodes, joins them with `redis-cli --cluster create`, and waits until every node says `cluster_state:ok`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-redis-cluster-"));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  const cluster: RedisCluster = {
    ports,
    get nodes() {
      return ports.map((p) => `127.0.0.1:${p}`).join(",");
    },
    nodeClients: () => ports.map((port) => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 })),
    async remove() {
      await Promise.all(children.map(stop));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < MASTERS; i++) {
      const port = await freePort();
      ports.push(port);
      children.push(await startNode(port, await freePort(), dir));
    }
    await run(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: 30_000 },
    );
    await Promise.all(ports.map((port) => waitClusterOk(port)));
  } catch (err) {
    await cluster.remove();
    throw err;
  }
  return cluster;
}

/**
 * One cluster-enabled redis-server; its cluster bus gets a free port of its own (`cluster-port`,
 * Redis 7), since the default port+10000 may be taken or past 65535. Waits until it answers PING.
 */
async function startNode(port: number, busPort: number, dir: string): Promise<ChildProcess> {
  const args = [
    ["--port", String(port)],
    ["--cluster-port", String(busPort)],
    ["--bind", "127.0.0.1"],
    ["--cluster-enabled", "yes"],
    ["--cluster-config-file", `nodes-${port}.conf`],
    ["--dir", dir],
    ["--save", ""],
    ["--appendonly", "no"],
    ["--daemonize", "no"],
    ["--loglevel", "warning"],
  ].flat();
  const child = spawn("redis-server", args, { stdio: "ignore" });
  // A test process that dies must not leave its nodes behind.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  child.once("exit", () => process.removeListener("exit", reap));
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  await withProbe(port, (probe) =>
    sleepUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
        if (probe.status !== "ready") await probe.connect().catch(() => {});
        return (await probe.ping()) === "PONG";
      },
      { timeoutMs: 10_000, message: `redis-server on port ${port} answers PING` },
    ),
  );
  return child;
}

async function waitClusterOk(port: number): Promise<void> {
  await withProbe(port, (probe) =>
    sleepUntil(
      async () => {
        if (probe.status !== "ready") await probe.connect().catch(() => {});
        return /cluster_state:ok/.test(String(await probe.call("CLUSTER", "INFO")));
      },
      { timeoutMs: 20_000, message: `node ${port} reports cluster_state:ok` },
    ),
  );
}

async function withProbe<T>(port: number, fn: (probe: Redis) => Promise<T>): Promise<T> {
  const probe = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
  });
  probe.on("error", () => {});
  try {
    return await fn(probe);
  } finally {
    probe.disconnect();
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}
