import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { WorkerEnv } from "@inferline/worker";
import { ApiEnv } from "../src/env.ts";

// Every variable the API and the worker parse is documented for users: a row of
// docs/configuration.md and a line of .env.example. A setting added to an env schema alone fails here.

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

describe.each([
  ["API", Object.keys(ApiEnv.shape)],
  ["worker", Object.keys(WorkerEnv.shape)],
])("the %s's settings", (_process, names) => {
  it("each have a row in docs/configuration.md", () => {
    const rows = new Set([...read("docs/configuration.md").matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]));
    expect(names.filter((name) => !rows.has(name))).toEqual([]);
  });

  it("each appear in .env.example", () => {
    const lines = new Set([...read(".env.example").matchAll(/^#? ?([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(names.filter((name) => !lines.has(name))).toEqual([]);
  });
});
