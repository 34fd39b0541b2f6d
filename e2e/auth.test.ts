import { spawn } from "node:child_process";
import crypto from "node:crypto";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { Database, TenantStore } from "@inferline/db";
import { ApiClient, sleepUntil, testRedisUrl } from "@inferline/testing";
import { loadApiEnv, startApi, type RunningApi } from "@inferline/api";
import { startStack, testLogger, type TestStack } from "./support/stack.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI = path.join(ROOT, "apps/cli/src/main.ts");
const CACHE_SIZE = 100;
const PER_IP = 5;

// Every lookup an API process makes goes through TenantStore.authenticate: counting its calls
// counts the PostgreSQL lookups (the processes run in this test process, so the spy sees them).
const lookups = vi.spyOn(TenantStore.prototype, "authenticate");

let stack: TestStack;
/** A second API process on the same database and queue prefix. */
let second: RunningApi;
/** A third, with a per-address budget of PER_IP lookups per second. */
let limited: RunningApi;
let admin: Database;
let tenants: TenantStore;

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    api: { AUTH_CACHE_SIZE: String(CACHE_SIZE), AUTH_RATE_LIMIT_PER_IP: "0" },
  });
  second = await startApi(loadApiEnv(stack.apiEnv), testLogger);
  limited = await startApi(loadApiEnv({ ...stack.apiEnv, AUTH_RATE_LIMIT_PER_IP: String(PER_IP) }), testLogger);
  admin = new Database(stack.db.url, { poolSize: 2 });
  tenants = new TenantStore(admin.pool, admin.prisma);
});
afterAll(async () => {
  await limited?.close();
  await second?.close();
  await admin?.close();
  await stack?.close();
});
beforeEach(() => {
  lookups.mockClear();
});

const randomKey = () => `il_${crypto.randomBytes(32).toString("base64url")}`;
const lookupsOf = (key: string) => lookups.mock.calls.filter(([k]) => k === key).length;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** GET from a chosen local address (all of 127.0.0.0/8 is loopback), so tests can be two clients. */
function getFrom(
  api: RunningApi,
  from: string,
  key: string | undefined,
  route = "/v1/models",
): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const { port } = new URL(api.url);
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: "127.0.0.1",
        port,
        path: route,
        localAddress: from,
        agent: false,
        headers: key ? { authorization: `Bearer ${key}` } : {},
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => (body += d));
        res.on("end", () => {
          const code = res.statusCode === 200 ? undefined : (JSON.parse(body) as { code: string }).code;
          resolve({ status: res.statusCode!, code, retryAfter: res.headers["retry-after"] });
        });
      },
    );
    req.on("error", reject);
  });
}

/** GETs over one kept-alive connection (an agent of one socket), with whatever Authorization header each request names. */
function overOneSocket(api: RunningApi) {
  const { port } = new URL(api.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const get = (route: string, authorization?: string): Promise<{ status: number; code?: string }> =>
    new Promise((resolve, reject) => {
      const req = http.get(
        { host: "127.0.0.1", port, path: route, agent, headers: authorization ? { authorization } : {} },
        (res) => {
          sockets.add(res.socket);
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => (body += d));
          res.on("end", () =>
            resolve({
              status: res.statusCode!,
              code: res.statusCode === 200 ? undefined : (JSON.parse(body) as { code: string }).code,
            }),
          );
        },
      );
      req.on("error", reject);
    });
  return { get, sockets, close: () => agent.destroy() };
}

describe("one connection, many keys", () => {
  it("each request on a kept-alive connection is its own key's: another tenant's, a malformed one, none, and a revoked one are each answered as such", async () => {
    const a = await tenants.createKey("socket-a");
    const b = await tenants.createKey("socket-b");
    const submitted = await new ApiClient(stack.api.url, a.key).request<{ id: string }>("POST", "/v1/jobs", {
      json: {
        model: "iris",
        inputs: [{ name: "features", shape: [1, 4], datatype: "FP32", data: [5.1, 3.5, 1.4, 0.2] }],
      },
    });
    expect(submitted.status).toBe(202);
    const route = `/v1/jobs/${submitted.body.id}`;
    const conn = overOneSocket(stack.api);
    try {
      expect(await conn.get(route, `Bearer ${a.key}`)).toEqual({ status: 200 });
      expect(await conn.get(route, `Bearer ${b.key}`)).toMatchObject({ status: 404 }); // not b's job
      expect(await conn.get(route, `Bearer ${a.key}`)).toEqual({ status: 200 });
      expect(await conn.get(route, "Bearer not-a-key")).toMatchObject({ status: 401, code: "invalid_api_key" });
      expect(await conn.get(route)).toMatchObject({ status: 401, code: "missing_api_key" });
      expect(await conn.get(route, `Bearer ${a.key}`)).toEqual({ status: 200 });
      const revoked = await cli([
        "keys",
        "revoke",
        a.keyId,
        "--database-url",
        stack.db.url,
        "--redis-url",
        testRedisUrl(),
        "--queue-prefix",
        stack.prefix,
      ]);
      expect(revoked.code, revoked.stderr).toBe(0);
      await sleepUntil(async () => (await conn.get(route, `Bearer ${a.key}`)).status === 401, {
        timeoutMs: 5000,
        message: "the revoked key is refused on the connection that used it",
      });
      expect(await conn.get(route, `Bearer ${b.key}`)).toMatchObject({ status: 404 });
      expect(conn.sockets.size).toBe(1);
    } finally {
      conn.close();
    }
  });
});

describe("key revocation", () => {
  it("`inferline keys revoke` makes both API processes refuse a key they had cached, within a second or so", async () => {
    const { key, keyId } = await tenants.createKey("revokee");
    const [one, two] = [new ApiClient(stack.api.url, key), new ApiClient(second.url, key)];
    expect((await one.get("/v1/models")).status).toBe(200);
    expect((await two.get("/v1/models")).status).toBe(200);

    const run = await cli([
      "keys",
      "revoke",
      keyId,
      "--database-url",
      stack.db.url,
      "--redis-url",
      testRedisUrl(),
      "--queue-prefix",
      stack.prefix,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    // Both held the key for another 30 s without the announcement.
    await sleepUntil(
      async () => (await one.get("/v1/models")).status === 401 && (await two.get("/v1/models")).status === 401,
      {
        timeoutMs: 3000,
        message: "both processes refuse the revoked key",
      },
    );
    const refused = await two.get("/v1/models");
    expect(refused.body.code).toBe("invalid_api_key");
  });

  it("when the subscriber reconnects, every cached key is checked again (a revocation announced meanwhile may be lost)", async () => {
    const { key, keyId } = await tenants.createKey("missed");
    const [one, two] = [new ApiClient(stack.api.url, key), new ApiClient(second.url, key)];
    expect((await one.get("/v1/models")).status).toBe(200);
    expect((await two.get("/v1/models")).status).toBe(200);
    // Revoked in PostgreSQL with no announcement, as when Redis was unreachable for `keys revoke`.
    await tenants.revokeKey(keyId);
    expect((await one.get("/v1/models")).status).toBe(200);

    const redis = new Redis(testRedisUrl());
    try {
      const clients = (await redis.client("LIST")) as string;
      const ids = clients
        .split("\n")
        .filter((line) => line.includes(` name=${stack.prefix}:api-subscriber `))
        .map((line) => /\bid=(\d+)/.exec(line)![1]!);
      expect(ids.length).toBeGreaterThanOrEqual(3); // this file's three API processes
      for (const id of ids) await redis.client("KILL", "ID", id);
    } finally {
      redis.disconnect();
    }
    await sleepUntil(
      async () => (await one.get("/v1/models")).status === 401 && (await two.get("/v1/models")).status === 401,
      {
        timeoutMs: 5000,
        message: "the revoked key is refused after the reconnect",
      },
    );
  });
});

describe("the key cache", () => {
  it("holds at most its bound; random keys sprayed between uses never push a valid key out", async () => {
    const hot = new ApiClient(stack.api.url, (await tenants.createKey("hot")).key);
    expect((await hot.get("/v1/models")).status).toBe(200);
    lookups.mockClear();
    for (let round = 0; round < 3; round++) {
      // More random keys than the cache holds, between two uses of the hot key.
      const sprayed = Array.from({ length: CACHE_SIZE * 2 }, randomKey);
      for (let i = 0; i < sprayed.length; i += 25) {
        const answers = await Promise.all(sprayed.slice(i, i + 25).map((k) => hot.withKey(k).get("/v1/models")));
        expect(answers.map((a) => a.status)).toEqual(Array(answers.length).fill(401));
      }
      expect((await hot.get("/v1/models")).status).toBe(200);
    }
    expect(lookupsOf(hot.apiKey!)).toBe(0);
    expect(lookups.mock.calls.length).toBe(CACHE_SIZE * 2 * 3);
    const stats = stack.api.auth.stats();
    expect(stats.refusedKeys).toBe(CACHE_SIZE);
    expect(stats.lookupsInFlight).toBe(0);
  });

  it("a refused key costs one lookup per TTL, not one per request", async () => {
    const bad = stack.alpha.withKey(randomKey());
    for (let i = 0; i < 5; i++) expect((await bad.get("/v1/models")).status).toBe(401);
    expect(lookupsOf(bad.apiKey!)).toBe(1);
  });

  it("valid keys beyond the bound evict the least recently used ones only", async () => {
    const keys = [];
    for (let i = 0; i < CACHE_SIZE + 10; i++) keys.push(await tenants.createKey(`many-${i % 5}`));
    for (const { key } of keys) expect((await stack.alpha.withKey(key).get("/v1/models")).status).toBe(200);
    expect(stack.api.auth.stats().validKeys).toBe(CACHE_SIZE);
    lookups.mockClear();
    // The most recent CACHE_SIZE are still cached.
    for (const { key } of keys.slice(10)) expect((await stack.alpha.withKey(key).get("/v1/models")).status).toBe(200);
    expect(lookups.mock.calls.length).toBe(0);
  });

  it("concurrent requests with one uncached key share a single lookup", async () => {
    const fresh = stack.alpha.withKey((await tenants.createKey("burst")).key);
    const answers = await Promise.all(Array.from({ length: 20 }, () => fresh.get("/v1/models")));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(lookupsOf(fresh.apiKey!)).toBe(1);
  });
});

describe("per-address limit on unauthenticated requests", () => {
  it("past the budget: 429 auth_rate_limited with Retry-After, answered without a PostgreSQL lookup", async () => {
    const keys = Array.from({ length: 30 }, randomKey);
    const answers = await Promise.all([
      ...keys.map((k) => getFrom(limited, "127.0.0.1", k)),
      getFrom(limited, "127.0.0.1", undefined),
      getFrom(limited, "127.0.0.1", "il_malformed"),
    ]);
    const limitedAnswers = answers.filter((a) => a.status === 429);
    // 32 requests meet at most two one-second windows of PER_IP each.
    expect(limitedAnswers.length).toBeGreaterThanOrEqual(answers.length - 2 * PER_IP);
    expect(limitedAnswers.every((a) => a.code === "auth_rate_limited" && Number(a.retryAfter) >= 1)).toBe(true);
    expect(answers.every((a) => a.status === 429 || a.status === 401)).toBe(true);
    // Each random key that got a 401 cost one lookup; those answered 429 cost none.
    const refused = answers.slice(0, keys.length).filter((a) => a.status === 401).length;
    expect(lookups.mock.calls.length).toBe(refused);
    expect(refused).toBeLessThanOrEqual(2 * PER_IP);
  });

  it("while one address sprays bad keys, its cached valid key and other addresses' new keys still work", async () => {
    const cached = (await tenants.createKey("neighbour")).key;
    await sleepUntil(async () => (await getFrom(limited, "127.0.0.1", cached)).status === 200, {
      message: "the valid key is cached",
    });
    let spraying = true;
    const sprayed: number[] = [];
    const sprayer = async () => {
      while (spraying) sprayed.push((await getFrom(limited, "127.0.0.1", randomKey())).status);
    };
    const sprayers = [sprayer(), sprayer(), sprayer()];
    try {
      await sleepUntil(() => sprayed.filter((s) => s === 429).length >= 10, {
        message: "the sprayer is over its budget",
      });
      for (let i = 0; i < 20; i++) expect((await getFrom(limited, "127.0.0.1", cached)).status).toBe(200);
      // After a reconnect every key is checked again; a key the cache held is not charged to the
      // address, so the sprayer cannot lock it out.
      const before = lookupsOf(cached);
      limited.auth.invalidateAll();
      expect((await getFrom(limited, "127.0.0.1", cached)).status).toBe(200);
      expect(lookupsOf(cached)).toBe(before + 1);
      // Keys never seen by this process, from another address: their own budget.
      for (let i = 0; i < 3; i++) {
        const fresh = (await tenants.createKey(`elsewhere-${i}`)).key;
        expect(await getFrom(limited, "127.0.0.2", fresh)).toEqual({
          status: 200,
          code: undefined,
          retryAfter: undefined,
        });
      }
    } finally {
      spraying = false;
      await Promise.all(sprayers);
    }
    expect(limited.auth.stats().addresses).toBeGreaterThanOrEqual(2);
  });
});
