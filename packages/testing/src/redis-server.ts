import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "./free-port.ts";
import { sleepUntil } from "./sleep-until.ts";

/**
 * A redis-server of a test's own on a free loopback port, without persistence, as a child
 * process: the test may SIGKILL it and start it again (empty) without touching the machine's
 * main Redis.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Starts the server (again) on the same port and waits until it answers PING. */
  start(): Promise<void>;
  /** SIGKILLs the server: every connection drops at once and its data is gone. */
  kill(): Promise<void>;
  /** Freezes the server with SIGSTOP: connections stay open, nothing answers (a hung server). */
  pause(): void;
  resume(): void;
  remove(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const stopped = (c: ChildProcess) =>
    new Promise<void>((resolve) =>
      c.exitCode !== null || c.signalCode !== null ? resolve() : c.once("exit", () => resolve()),
    );
  const server: RedisServer = {
    port,
    url,
    async start() {
      const c = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--daemonize",
          "no",
          "--loglevel",
          "warning",
        ],
        { stdio: "ignore" },
      );
      child = c;
      // A test process that dies must not leave its server behind.
      const reap = () => c.kill("SIGKILL");
      process.once("exit", reap);
      c.once("exit", () => process.removeListener("exit", reap));
      const spawned = new Promise<void>((resolve, reject) => {
        c.once("spawn", resolve);
        c.once("error", reject);
      });
      await spawned;
      const probe = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 500,
      });
      probe.on("error", () => {});
      try {
        await sleepUntil(
          async () => {
            if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
            if (probe.status !== "ready") await probe.connect().catch(() => {});
            return (await probe.ping()) === "PONG";
          },
          { timeoutMs: 10_000, message: `redis-server on port ${port} answers PING` },
        );
      } finally {
        probe.disconnect();
      }
    },
    async kill() {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill("SIGKILL");
      await stopped(c);
    },
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    remove: () => server.kill(),
  };
  await server.start();
  return server;
}
