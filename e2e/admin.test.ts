import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "./support/stack.ts";

const ADMIN_KEY = "admin-key-for-tests-0123456789";
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false, api: { ADMIN_API_KEY: ADMIN_KEY } });
});
afterAll(async () => {
  await stack?.close();
});

describe("queue dashboard", () => {
  it("needs the admin key; a tenant key is not enough", async () => {
    expect((await stack.anonymous.get("/admin/queues")).status).toBe(401);
    expect((await stack.alpha.get("/admin/queues")).status).toBe(401);
    const basic = `Basic ${Buffer.from(`ops:${ADMIN_KEY}`).toString("base64")}`;
    const page = await stack.anonymous.request("GET", "/admin/queues", { headers: { authorization: basic } });
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<html/i);
    const queues = await stack.anonymous.withKey(ADMIN_KEY).get("/admin/queues/api/queues");
    expect(queues.status).toBe(200);
    expect(queues.body.queues.map((q: { name: string }) => q.name)).toEqual(
      expect.arrayContaining(["infer-iris@1", "infer-lookup@1"]),
    );
  });
});

describe("API description", () => {
  it("serves OpenAPI 3.1 built from the validation schemas, and a docs page", async () => {
    const doc = await stack.anonymous.get("/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(["/v1/jobs", "/v1/jobs/{id}", "/v1/batches", "/v1/models"]),
    );
    expect(doc.body.components.schemas.JobSubmission.required).toEqual(expect.arrayContaining(["model", "inputs"]));
    const page = await stack.anonymous.get("/docs/");
    expect(page.status).toBe(200);
    expect(page.text).toContain("swagger-ui");
  });
});
