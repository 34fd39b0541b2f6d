import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { Express } from "express";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IRIS_SAMPLES, irisJob, type HttpResponse } from "@inferline/testing";
import { startStack, type TestStack } from "./support/stack.ts";

type Json = Record<string, any>;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DOC_ID = "https://inferline.dev/openapi.json";
/** bull-board's own pages and API live below its mount; the document describes the mount. */
const ADMIN_MOUNT = "/admin/queues";
const METHODS = ["get", "post", "put", "patch", "delete"] as const;

let stack: TestStack;
let doc: Json;
let ajv: Ajv2020;
beforeAll(async () => {
  stack = await startStack({ api: { ADMIN_API_KEY: "admin-key-for-openapi-tests-0123" } });
  doc = (await stack.anonymous.get("/openapi.json")).body;
  // Formats are not asserted (zod's date-time and uuid patterns still are); the whole document is
  // one schema resource, so a JSON Pointer into it names any schema it holds.
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...doc, $id: DOC_ID });
});
afterAll(async () => {
  await stack?.close();
});

const pointer = (parts: readonly (string | number)[]) =>
  parts.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

/** Validates `value` against the schema at `parts` in the document; returns ajv's errors. */
function validateAt(parts: readonly (string | number)[], value: unknown): unknown[] {
  const validate = ajv.compile({ $ref: `${DOC_ID}#/${pointer(parts)}` });
  return validate(value) ? [] : (validate.errors ?? []);
}

/** Every route the Express app registers, as `METHOD /openapi/{path}`, by walking its router stacks. */
function registeredRoutes(app: Express): Set<string> {
  const found = new Set<string>();
  const join = (prefix: string, p: string) => (p === "/" ? prefix || "/" : `${prefix}${p}`);
  const template = (p: string) => p.replace(/:(\w+)/g, "{$1}");
  const walk = (stack: any[], prefix: string) => {
    const routerPaths = new Set(
      stack.filter((l) => Array.isArray(l.handle?.stack) && !l.route).flatMap((l) => [l.rawPath].flat()),
    );
    for (const layer of stack) {
      const paths: string[] = [layer.rawPath].flat();
      if (layer.route) {
        for (const p of [layer.route.path].flat() as string[])
          for (const m of Object.keys(layer.route.methods))
            found.add(`${m.toUpperCase()} ${template(join(prefix, p))}`);
      } else if (paths.some((p) => join(prefix, p) === ADMIN_MOUNT)) {
        found.add(`GET ${ADMIN_MOUNT}`);
      } else if (Array.isArray(layer.handle?.stack)) {
        for (const p of paths) walk(layer.handle.stack, p === "/" ? prefix : join(prefix, p));
      } else {
        // A middleware mounted on a path of its own (Swagger UI's /docs) serves GET there.
        for (const p of paths) if (p !== "/" && !routerPaths.has(p)) found.add(`GET ${template(join(prefix, p))}`);
      }
    }
  };
  walk((app as any).router.stack, "");
  return found;
}

function documentedRoutes(): Set<string> {
  const found = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths as Json))
    for (const m of METHODS) if (item[m]) found.add(`${m.toUpperCase()} ${p}`);
  return found;
}

/** Asserts a live answer matches what the document says that route answers with that status. */
function expectDocumented(method: string, template: string, res: HttpResponse): void {
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const parts = ["paths", template, method, "responses", String(res.status), "content", type, "schema"];
  const responses = doc.paths[template]?.[method]?.responses ?? {};
  expect(
    responses[String(res.status)]?.content?.[type]?.schema,
    `${method} ${template} documents ${res.status} ${type}`,
  ).toBeDefined();
  const bodies =
    type === "application/x-ndjson"
      ? res.text
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line))
      : [res.body];
  for (const body of bodies) expect(validateAt(parts, body), `${method} ${template} ${res.status}`).toEqual([]);
}

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("documents every route the app registers, and no other", () => {
    const registered = registeredRoutes(stack.api.app);
    expect(registered.size).toBeGreaterThan(25);
    expect([...registered].filter((r) => !documentedRoutes().has(r))).toEqual([]);
    expect([...documentedRoutes()].filter((r) => !registered.has(r))).toEqual([]);
  });

  it("gives every operation a JSON success schema (or its text), its problems, and every JSON request body an example", () => {
    for (const [p, item] of Object.entries(doc.paths as Json)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const success = Object.entries(op.responses as Json).filter(([status]) => status.startsWith("2"));
        expect(success.length, `${m} ${p}`).toBeGreaterThan(0);
        for (const [status, response] of success)
          for (const media of Object.values<Json>(response.content ?? {}))
            expect(media.schema, `${m} ${p} ${status}`).toBeDefined();
        if (op.security?.length !== 0 && p.startsWith("/v")) expect(op.responses["401"], `${m} ${p}`).toBeDefined();
        const body = op.requestBody?.content?.["application/json"];
        if (body) expect(Object.keys(body.examples ?? {}).length, `${m} ${p}`).toBeGreaterThan(0);
      }
    }
  });

  it("documents 503 model_unavailable where a model no worker can serve is refused", () => {
    for (const [p, m] of [
      ["/v1/jobs", "post"],
      ["/v1/batches", "post"],
      ["/v2/models/{name}/infer", "post"],
    ] as const) {
      const refusal = doc.paths[p][m].responses["503"];
      expect(refusal.description).toContain("model_unavailable");
      expect(refusal.content["application/problem+json"].example.code).toBe("model_unavailable");
    }
    expect(doc.components.schemas.Readyz.properties.models).toBeDefined();
  });

  it("has examples that validate against their schemas", () => {
    let checked = 0;
    const check = (parts: (string | number)[], value: unknown) => {
      expect(validateAt(parts, value), `example at /${pointer(parts)}`).toEqual([]);
      checked++;
    };
    const visit = (node: unknown, parts: (string | number)[]) => {
      if (!node || typeof node !== "object") return;
      const n = node as Json;
      // In a schema `examples` is an array; in a media type it is a map of {value}, beside `schema`.
      if (Array.isArray(n.examples)) n.examples.forEach((e: unknown) => check(parts, e));
      if (n.schema && "example" in n) check([...parts, "schema"], n.example);
      if (n.schema && n.examples && !Array.isArray(n.examples))
        for (const e of Object.values<Json>(n.examples)) check([...parts, "schema"], e.value);
      for (const [k, v] of Object.entries(n)) if (k !== "examples" && k !== "example") visit(v, [...parts, k]);
    };
    visit(doc.components.schemas, ["components", "schemas"]);
    visit(doc.paths, ["paths"]);
    expect(checked).toBeGreaterThan(25);
    for (const name of [
      "JobView",
      "BatchView",
      "ModelView",
      "QueueStatus",
      "Problem",
      "Readyz",
      "V2ModelMetadata",
      "V2InferResponse",
      "BatchResultLine",
    ]) {
      expect(doc.components.schemas[name].examples?.length, name).toBeGreaterThan(0);
    }
  });

  it("refuses an example that does not match (the check bites)", () => {
    expect(
      validateAt(["components", "schemas", "JobView"], {
        ...doc.components.schemas.JobView.examples[0],
        status: "done",
      }),
    ).not.toEqual([]);
    expect(
      validateAt(["components", "schemas", "JobView"], { ...doc.components.schemas.JobView.examples[0], extra: 1 }),
    ).not.toEqual([]);
  });
});

describe("live answers match the document", () => {
  it("jobs: submit, get, list, cancel, webhooks", async () => {
    const submit = await stack.alpha.post(
      "/v1/jobs",
      irisJob([IRIS_SAMPLES.setosa], { metadata: { customer: "c-17" } }),
    );
    expect(submit.status).toBe(202);
    expectDocumented("post", "/v1/jobs", submit);
    const done = await stack.alpha.get(`/v1/jobs/${submit.body.id}?wait=10`);
    expect(done.body.status).toBe("succeeded");
    expectDocumented("get", "/v1/jobs/{id}", done);
    expectDocumented("get", "/v1/jobs", await stack.alpha.get("/v1/jobs?limit=2"));
    const cancel = await stack.alpha.post(`/v1/jobs/${submit.body.id}/cancel`);
    expect(cancel.status).toBe(409);
    expectDocumented("post", "/v1/jobs/{id}/cancel", cancel);
    expectDocumented("get", "/v1/jobs/{id}/webhooks", await stack.alpha.get(`/v1/jobs/${submit.body.id}/webhooks`));
    expectDocumented("get", "/v1/jobs/{id}", await stack.alpha.get("/v1/jobs/00000000-0000-4000-8000-000000000000"));
    const invalid = await stack.alpha.post("/v1/jobs", { model: "iris", inputs: [] });
    expect(invalid.status).toBe(422);
    expectDocumented("post", "/v1/jobs", invalid);
    expectDocumented("post", "/v1/jobs", await stack.anonymous.post("/v1/jobs", irisJob()));
  });

  it("batches: create, get, list, results, cancel", async () => {
    const items = [IRIS_SAMPLES.setosa, IRIS_SAMPLES.virginica].map((row, i) => ({
      customId: `row-${i}`,
      inputs: irisJob([row]).inputs,
    }));
    const created = await stack.alpha.post("/v1/batches", { model: "iris", items });
    expect(created.status).toBe(202);
    expectDocumented("post", "/v1/batches", created);
    const done = await stack.alpha.get(`/v1/batches/${created.body.id}?wait=10`);
    expect(done.body.status).toBe("completed");
    expectDocumented("get", "/v1/batches/{id}", done);
    expectDocumented("get", "/v1/batches", await stack.alpha.get("/v1/batches?limit=1&status=completed"));
    expectDocumented("get", "/v1/batches", await stack.alpha.get("/v1/batches?status=done"));
    const results = await stack.alpha.get(`/v1/batches/${created.body.id}/results`);
    expect(results.text.trimEnd().split("\n")).toHaveLength(2);
    expectDocumented("get", "/v1/batches/{id}/results", results);
    expectDocumented(
      "post",
      "/v1/batches/{id}/cancel",
      await stack.alpha.post(`/v1/batches/${created.body.id}/cancel`),
    );
  });

  it("models, queue, webhook secret", async () => {
    expectDocumented("get", "/v1/models", await stack.alpha.get("/v1/models"));
    expectDocumented("get", "/v1/models/{name}", await stack.alpha.get("/v1/models/iris"));
    expectDocumented("get", "/v1/models/{name}", await stack.alpha.get("/v1/models/nope"));
    expectDocumented("get", "/v1/models/{name}/queue", await stack.alpha.get("/v1/models/iris/queue"));
    expectDocumented("get", "/v1/webhooks/secret", await stack.alpha.get("/v1/webhooks/secret"));
  });

  it("Open Inference Protocol v2: health, metadata, ready, infer", async () => {
    expectDocumented("get", "/v2/health/live", await stack.anonymous.get("/v2/health/live"));
    expectDocumented("get", "/v2/health/ready", await stack.anonymous.get("/v2/health/ready"));
    expectDocumented("get", "/v2/models/{name}", await stack.alpha.get("/v2/models/iris"));
    expectDocumented(
      "get",
      "/v2/models/{name}/versions/{version}",
      await stack.alpha.get("/v2/models/iris/versions/1"),
    );
    expectDocumented("get", "/v2/models/{name}/ready", await stack.alpha.get("/v2/models/iris/ready"));
    expectDocumented(
      "get",
      "/v2/models/{name}/versions/{version}/ready",
      await stack.alpha.get("/v2/models/iris/versions/1/ready"),
    );
    const infer = await stack.alpha.post("/v2/models/iris/infer", {
      id: "req-1",
      inputs: irisJob([IRIS_SAMPLES.virginica]).inputs,
    });
    expect(infer.status).toBe(200);
    expectDocumented("post", "/v2/models/{name}/infer", infer);
    const bad = await stack.alpha.post("/v2/models/iris/versions/1/infer", { inputs: [] });
    expect(bad.status).toBe(400);
    expectDocumented("post", "/v2/models/{name}/versions/{version}/infer", bad);
  });

  it("probes", async () => {
    expectDocumented("get", "/healthz", await stack.anonymous.get("/healthz"));
    const ready = await stack.anonymous.get("/readyz");
    expect(ready.body.models).toBeDefined();
    expectDocumented("get", "/readyz", ready);
  });
});

describe("a client generated from the document", () => {
  const CLIENT = `import type { paths } from "./schema.ts";

type SubmitBody = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"];
type Accepted = paths["/v1/jobs"]["post"]["responses"][202]["content"]["application/json"];
type Job = paths["/v1/jobs/{id}"]["get"]["responses"][200]["content"]["application/json"];
type Page = paths["/v1/jobs"]["get"]["responses"][200]["content"]["application/json"];
type Inferred = paths["/v2/models/{name}/infer"]["post"]["responses"][200]["content"]["application/json"];
type Send = (method: string, path: string, body?: unknown) => Promise<unknown>;

export async function submit(send: Send, body: SubmitBody): Promise<{ id: string; status: string }> {
  const job = (await send("POST", "/v1/jobs", body)) as Accepted;
  const status: "queued" | "running" | "succeeded" | "failed" | "canceled" | "expired" = job.status;
  return { id: job.id, status };
}

export async function get(send: Send, id: string): Promise<number | undefined> {
  const job = (await send("GET", "/v1/jobs/" + id)) as Job;
  return job.result?.outputs[0]?.shape[0];
}

export async function firstPage(send: Send): Promise<string | null> {
  const page = (await send("GET", "/v1/jobs")) as Page;
  return page.jobs.length > 0 ? page.jobs[0]!.createdAt : page.nextCursor;
}

export async function infer(send: Send): Promise<string> {
  const answer = (await send("POST", "/v2/models/iris/infer", { inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] })) as Inferred;
  return answer.id + answer.model_name;
}

export const example: SubmitBody = { model: "iris", inputs: [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] };
`;

  /**
   * Generates types from `document`, writes them and the client into a temp directory, and runs
   * tsc --strict there. `defaultNonNullable: false`: a request field with a default (priority,
   * metadata) is optional to send, as the README says to generate.
   */
  async function typecheck(document: Json): Promise<{ ok: boolean; output: string }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-openapi-"));
    try {
      fs.writeFileSync(
        path.join(dir, "schema.ts"),
        astToString(await openapiTS(document as never, { defaultNonNullable: false })),
      );
      fs.writeFileSync(path.join(dir, "client.ts"), CLIENT);
      const compilerOptions = {
        strict: true,
        noEmit: true,
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        allowImportingTsExtensions: true,
        types: [],
        lib: ["ES2022"],
      };
      fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["client.ts"] }));
      try {
        const { stdout } = await promisify(execFile)(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", dir]);
        return { ok: true, output: stdout };
      } catch (err) {
        return { ok: false, output: String((err as { stdout?: string }).stdout ?? err) };
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it("type-checks a small client written against the generated types", async () => {
    const result = await typecheck(doc);
    expect(result.output).toBe("");
    expect(result.ok).toBe(true);
  });

  it("fails to type-check when the submit's 202 has no schema (the check bites)", async () => {
    const stripped = structuredClone(doc);
    delete stripped.paths["/v1/jobs"].post.responses["202"].content;
    const result = await typecheck(stripped);
    expect(result.ok).toBe(false);
    // Line 4 of the client: the 202's `content` is gone, so `Accepted` cannot be named.
    expect(result.output).toMatch(/client\.ts\(4,\d+\): error TS2339/);
  });
});
