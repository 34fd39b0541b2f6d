import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { ApiEnv } from "@inferline/api";
import { WorkerEnv } from "@inferline/worker";
import {
  CONFIGURATION_FILE,
  configurationDocs,
  ENV_EXAMPLE_FILE,
  envExample,
  settingSections,
} from "./generate-settings-docs.ts";

// docs/configuration.md's settings tables and .env.example are written from the env schemas, where
// each default and description live: a changed default, or a setting added to a schema, must reach
// them (run `pnpm generate:settings-docs` and commit both files).
describe("the settings docs", () => {
  it("docs/configuration.md's tables are what the env schemas generate", () => {
    const committed = fs.readFileSync(CONFIGURATION_FILE, "utf8");
    expect(committed).toBe(configurationDocs(committed));
  });

  it(".env.example is what the env schemas generate", () => {
    expect(fs.readFileSync(ENV_EXAMPLE_FILE, "utf8")).toBe(envExample());
  });

  it("list every variable the API and the worker parse, once", () => {
    const documented = Object.values(settingSections()).flatMap((rows) => rows.map((r) => r.name));
    expect(new Set(documented).size).toBe(documented.length);
    const parsed = new Set([...Object.keys(ApiEnv.shape), ...Object.keys(WorkerEnv.shape)]);
    expect([...parsed].filter((name) => !documented.includes(name))).toEqual([]);
  });
});
