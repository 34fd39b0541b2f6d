import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "@inferline/testing";
import { build, pack, PUBLISHED, readManifest } from "../../../scripts/published-packages.ts";
import { startCluster, type TestCluster } from "./support/cluster.ts";

// What users install: both packages built and packed as a release packs them, installed with npm
// from the tarballs into a project outside the workspace, then used from there: the client
// type-checked and run against a live API and worker, the CLI run from another directory.

const run = promisify(execFile);

let cluster: TestCluster;
let project: string;
let elsewhere: string;
let key: string;
beforeAll(async () => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-install-"));
  elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "inferline-elsewhere-"));
  const tarballs = PUBLISHED.map((pkg) => {
    build(pkg);
    return pack(pkg, project);
  });
  fs.writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "scratch", private: true, type: "module" }),
  );
  // As the docs say to install it: onnxruntime-node's install script would download CUDA files.
  const env: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" };
  for (const name of Object.keys(env)) if (name.toLowerCase().startsWith("npm_config_")) delete env[name];
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", ...tarballs, "@types/node@20", "typescript@5.9"],
    { cwd: project, env },
  );
  cluster = await startCluster();
  key = (await cluster.createKey("installed")).key;
}, 240_000);
afterAll(async () => {
  await cluster?.close();
  for (const dir of [project, elsewhere]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs a command; resolves with its exit code and output whatever the code. */
async function exec(
  file: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: options.cwd, env: options.env ?? process.env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe("@inferline/client from its tarball", () => {
  it("installs without any workspace package or zod, type-checks a project using its types, and runs a job", async () => {
    const installed = path.join(project, "node_modules/@inferline/client");
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies)).toEqual(["standardwebhooks"]);
    // The types stand alone (zod is in this project for the CLI; the client's types must not need it).
    expect(fs.readFileSync(path.join(installed, "dist/index.d.mts"), "utf8")).not.toMatch(/\bfrom\s+["']|import\(["']/);

    fs.writeFileSync(
      path.join(project, "use-client.ts"),
      `import { InferlineClient, JobFailedError, NotFoundError, VERSION, type InferenceResult, type Tensor } from "@inferline/client";

const client = new InferlineClient(); // INFERLINE_URL and INFERLINE_API_KEY
const inputs: Tensor[] = [{ name: "features", datatype: "FP32", shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }];
const result: InferenceResult = await client.run("iris", inputs, { cache: "bypass", timeoutSeconds: 30 });
// @ts-expect-error: FP33 is no datatype of the API
const wrong: Tensor = { name: "x", datatype: "FP33", shape: [1], data: [1] };
const missing = await client.jobs.get("00000000-0000-4000-8000-000000000000").catch((err: unknown) => err);
console.log(JSON.stringify({ version: VERSION, label: result.classifications?.[0]?.label, notFound: missing instanceof NotFoundError, failedError: typeof JobFailedError, wrong: wrong.name }));
`,
    );
    const compilerOptions = {
      strict: true,
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      skipLibCheck: false,
      types: ["node"],
      outDir: "out",
    };
    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({ compilerOptions, files: ["use-client.ts"] }),
    );
    const tsc = await exec(path.join(project, "node_modules/.bin/tsc"), ["-p", "."], { cwd: project });
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.code).toBe(0);

    const used = await exec(process.execPath, ["out/use-client.js"], {
      cwd: project,
      env: { ...process.env, INFERLINE_URL: cluster.api.url, INFERLINE_API_KEY: key },
    });
    expect(used.stderr).toBe("");
    expect(JSON.parse(used.stdout)).toEqual({
      version: readManifest("packages/client").version,
      label: "setosa",
      notFound: true,
      failedError: "function",
      wrong: "x",
    });
  });
});

describe("the inferline CLI from its tarball", () => {
  const inferline = () => path.join(project, "node_modules/.bin/inferline");

  it("prints its version and scores a CSV with the iris model it ships, from any directory", async () => {
    const version = await exec(inferline(), ["--version"], { cwd: elsewhere });
    expect(version).toMatchObject({ code: 0, stdout: `${readManifest("apps/cli").version}\n` });

    const csv = path.join(elsewhere, "flowers.csv");
    fs.writeFileSync(
      csv,
      "id,sepal_length,sepal_width,petal_length,petal_width\na,5.1,3.5,1.4,0.2\nb,6.7,3.0,5.2,2.3\n",
    );
    const { MODELS_DIR: _unset, ...env } = process.env;
    const scored = await exec(inferline(), ["score", "flowers.csv", "--model", "iris", "--progress", "off"], {
      cwd: elsewhere,
      env,
    });
    expect(scored.code, scored.stderr).toBe(0);
    const lines = scored.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; label: string });
    expect(lines.map((l) => [l.id, l.label])).toEqual([
      ["a", "setosa"],
      ["b", "virginica"],
    ]);
  });

  it("creates a key on an empty database with the migrations it ships, and submits a job with it", async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const created = await exec(
        inferline(),
        ["keys", "create", "--tenant", "installed-cli", "--database-url", db.url],
        { cwd: elsewhere },
      );
      expect(created.code, created.stderr).toBe(0);
      const tenant = await exec(inferline(), ["tenants", "show", "installed-cli", "--json", "--database-url", db.url], {
        cwd: elsewhere,
      });
      expect(JSON.parse(tenant.stdout)).toMatchObject({ name: "installed-cli", weight: 1, queued: 0 });
    } finally {
      await db.drop();
    }
    const inputs = JSON.stringify([{ name: "features", datatype: "FP32", shape: [1, 4], data: [6.7, 3.0, 5.2, 2.3] }]);
    const submitted = await exec(
      inferline(),
      ["jobs", "submit", "--model", "iris", "--inputs", inputs, "--cache", "bypass", "--wait", "30", "--json"],
      {
        cwd: elsewhere,
        env: { ...process.env, INFERLINE_URL: cluster.api.url, INFERLINE_API_KEY: key },
      },
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(JSON.parse(submitted.stdout)).toMatchObject({
      status: "succeeded",
      result: { classifications: [{ label: "virginica" }] },
    });
  });
});
