import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Database } from "@inferline/db";
import { IRIS_SAMPLES, irisInput, irisJob, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

// Strings PostgreSQL cannot store, unknown fields, and a statement that fails on one row of a
// group: each fails only its own request, with a 422 that names the field.
let stack: TestStack;
let db: Database;
beforeAll(async () => {
  stack = await startStack({ api: { WEBHOOK_ALLOW_PRIVATE: "true" }, workerEnv: { MAX_RESULT_BYTES: "4096" } });
  db = new Database(stack.db.url, { poolSize: 2 });
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
});

const NUL = "a\u0000b";
const LONE_HIGH = "a\ud800b";
const LONE_LOW = "\udc00";

function expectFault(res: HttpResponse, path: string, status = 422) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
}

/** Valid submits of tenant beta, sent alongside a hostile one: all must be accepted and succeed. */
async function alongside(hostile: () => Promise<HttpResponse>, n = 8): Promise<HttpResponse> {
  const [bad, ...good] = await Promise.all([
    hostile(),
    ...Array.from({ length: n }, () => stack.beta.post("/v1/jobs", irisJob())),
  ]);
  expect(good.map((r) => r.status)).toEqual(Array(n).fill(202));
  const done = await Promise.all(good.map(async (r) => (await stack.beta.get(`/v1/jobs/${r.body.id}?wait=10`)).body));
  expect(done.map((j) => j.status)).toEqual(Array(n).fill("succeeded"));
  return bad;
}

describe("strings PostgreSQL cannot store", () => {
  it.each([
    ["NUL in a metadata value", irisJob(undefined, { metadata: { note: NUL } }), "/metadata/note"],
    [
      "a lone high surrogate in a metadata value",
      irisJob(undefined, { metadata: { note: LONE_HIGH } }),
      "/metadata/note",
    ],
    [
      "a lone low surrogate in a metadata key",
      irisJob(undefined, { metadata: { [LONE_LOW]: "x" } }),
      `/metadata/${LONE_LOW}`,
    ],
    ["NUL in a metadata key", irisJob(undefined, { metadata: { [NUL]: "x" } }), `/metadata/${NUL}`],
    ["NUL in a webhook URL", irisJob(undefined, { webhook: { url: `http://127.0.0.1:9/${NUL}` } }), "/webhook/url"],
    [
      "a lone surrogate in a webhook URL",
      irisJob(undefined, { webhook: { url: `http://127.0.0.1:9/${LONE_HIGH}` } }),
      "/webhook/url",
    ],
    [
      "NUL in a tensor parameter",
      { model: "iris", inputs: [{ ...irisInput([IRIS_SAMPLES.setosa]), parameters: { tag: NUL } }] },
      "/inputs/0/parameters/tag",
    ],
  ])("%s: 422 naming the field; other tenants' submits at the same moment succeed", async (_label, body, path) => {
    const before = await db.prisma.job.count({ where: { tenant: { name: "alpha" } } });
    const bad = await alongside(() => stack.alpha.post("/v1/jobs", body));
    expectFault(bad, path);
    expect(await db.prisma.job.count({ where: { tenant: { name: "alpha" } } })).toBe(before);
  });

  it("in a batch item's customId (JSON and NDJSON): 422 naming the item, nothing created", async () => {
    const before = await db.prisma.batch.count();
    const items = [
      { customId: "ok", inputs: [irisInput([IRIS_SAMPLES.setosa])] },
      { customId: NUL, inputs: [irisInput([IRIS_SAMPLES.setosa])] },
    ];
    const json = await alongside(() => stack.alpha.post("/v1/batches", { model: "iris", items }));
    expectFault(json, "/items/1/customId");
    const ndjson = await stack.alpha.request("POST", "/v1/batches?model=iris", {
      body: items.map((i) => JSON.stringify(i)).join("\n"),
      headers: { "content-type": "application/x-ndjson" },
    });
    expectFault(ndjson, "/items/1/customId");
    expect(await db.prisma.batch.count()).toBe(before);
  });

  it("in a batch's webhook URL given as a query parameter: 422", async () => {
    const res = await stack.alpha.request(
      "POST",
      `/v1/batches?model=iris&webhookUrl=${encodeURIComponent(`http://127.0.0.1:9/${NUL}`)}`,
      {
        body: JSON.stringify({ inputs: [irisInput([IRIS_SAMPLES.setosa])] }),
        headers: { "content-type": "application/x-ndjson" },
      },
    );
    expect(res.status).toBe(422);
    expect(res.body.errors[0].path).toMatch(/^\/query\/webhook/);
  });

  it("in a list filter or a forged cursor: 4xx, not 500", async () => {
    expectFault(await stack.alpha.get(`/v1/jobs?model=${encodeURIComponent(NUL)}`), "/query/model");
    const forged = Buffer.from(JSON.stringify([new Date().toISOString(), "not-a-uuid"])).toString("base64url");
    expect((await stack.alpha.get(`/v1/jobs?cursor=${forged}`)).status).toBe(400);
  });

  it("in an OIP v2 request id: 400, nothing stored", async () => {
    const before = await db.prisma.job.count();
    const res = await stack.alpha.post("/v2/models/iris/infer", {
      id: NUL,
      inputs: [irisInput([IRIS_SAMPLES.setosa])],
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^id/);
    expect(await db.prisma.job.count()).toBe(before);
  });
});

describe("unknown fields", () => {
  it.each([
    ["a typo at the top", irisJob(undefined, { priorty: "high" }), "/priorty"],
    ["a field of a later version", irisJob(undefined, { maxRunSeconds: 60 }), "/maxRunSeconds"],
    [
      "inside a tensor",
      { model: "iris", inputs: [{ ...irisInput([IRIS_SAMPLES.setosa]), dtype: "FP32" }] },
      "/inputs/0/dtype",
    ],
    [
      "inside the webhook",
      irisJob(undefined, { webhook: { url: "http://127.0.0.1:9/x", secret: "s" } }),
      "/webhook/secret",
    ],
    [
      "inside an output",
      irisJob(undefined, { outputs: [{ name: "probabilities", binary_data: true }] }),
      "/outputs/0/binary_data",
    ],
  ])("%s: 422 naming it", async (_label, body, path) => {
    expectFault(await stack.alpha.post("/v1/jobs", body), path);
  });

  it("in a batch body, an item, and query parameters", async () => {
    const item = { inputs: [irisInput([IRIS_SAMPLES.setosa])] };
    expectFault(await stack.alpha.post("/v1/batches", { model: "iris", items: [item], note: "x" }), "/note");
    expectFault(
      await stack.alpha.post("/v1/batches", { model: "iris", items: [item, { ...item, id: "x" }] }),
      "/items/1/id",
    );
    expectFault(await stack.alpha.get("/v1/jobs?limt=5"), "/query/limt");
  });

  it("the OIP v2 infer body stays open (parameters of the protocol pass)", async () => {
    const res = await stack.alpha.post("/v2/models/iris/infer", {
      inputs: [irisInput([IRIS_SAMPLES.setosa])],
      parameters: { binary_data_output: false },
    });
    expect(res.status).toBe(200);
  });
});

describe("a group statement that fails on one row", () => {
  it("is retried row by row: only the guilty request fails, every other one of its group is stored", async () => {
    // A data exception raised by PostgreSQL for one row only, past validation (the safety net).
    await db.pool.query(`create or replace function refuse_poison() returns trigger language plpgsql as $$
      begin
        if new.metadata->>'poison' = 'yes' then raise exception 'injected data fault' using errcode = '22000'; end if;
        return new;
      end $$;
      create trigger refuse_poison before insert on jobs for each row execute function refuse_poison();`);
    try {
      const bodies = Array.from({ length: 24 }, (_, i) =>
        irisJob(undefined, { metadata: { n: String(i), ...(i === 11 ? { poison: "yes" } : {}) } }),
      );
      const answers = await Promise.all(bodies.map((b, i) => (i % 2 ? stack.alpha : stack.beta).post("/v1/jobs", b)));
      expect(answers[11]!.status).toBe(422);
      expect(answers[11]!.body.code).toBe("unstorable_value");
      const accepted = answers.filter((_, i) => i !== 11);
      expect(accepted.map((r) => r.status)).toEqual(Array(23).fill(202));
      const done = await Promise.all(
        accepted.map(async (r, k) =>
          ((k + (k >= 11 ? 1 : 0)) % 2 ? stack.alpha : stack.beta).get(`/v1/jobs/${r.body.id}?wait=10`),
        ),
      );
      expect(done.map((r) => r.body.status)).toEqual(Array(23).fill("succeeded"));
    } finally {
      await db.pool.query("drop trigger refuse_poison on jobs");
    }
  });
});

describe("sizes", () => {
  it("more rows than the model's maxRowsPerJob: 422 at the batch dimension", async () => {
    const rows = Array.from({ length: 1025 }, () => IRIS_SAMPLES.setosa);
    expectFault(await stack.alpha.post("/v1/jobs", irisJob(rows)), "/inputs/0/shape/0");
    expect((await stack.alpha.get("/v1/models/iris")).body.maxRowsPerJob).toBe(1024);
  });

  it("a result over MAX_RESULT_BYTES fails its job with result_too_large; a small one beside it succeeds", async () => {
    const big = (await stack.alpha.post("/v1/jobs", irisJob(Array.from({ length: 64 }, () => IRIS_SAMPLES.virginica))))
      .body;
    const small = (await stack.alpha.post("/v1/jobs", irisJob())).body;
    const [bigDone, smallDone] = await Promise.all(
      [big, small].map(async (j) => (await stack.alpha.get(`/v1/jobs/${j.id}?wait=10`)).body),
    );
    expect(bigDone.status).toBe("failed");
    expect(bigDone.error.code).toBe("result_too_large");
    expect(smallDone.status).toBe("succeeded");
  });
});
