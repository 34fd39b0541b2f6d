import { defineConfig } from "vitest/config";

export default defineConfig({
  // @inferline/client resolves to its source through tsconfig.base.json's paths (its exports name dist/).
  resolve: { tsconfigPaths: true },
  test: {
    include: [
      "e2e/**/*.test.ts",
      "apps/*/test/**/*.test.ts",
      "packages/*/test/**/*.test.ts",
      "models/**/*.test.ts",
      "scripts/**/*.test.ts",
    ],
    globalSetup: ["./packages/testing/src/global-setup.ts"],
    // Each file has its own database and queue prefix, so files may run in parallel; two at a time
    // suits the 2-core machines this runs on.
    pool: "forks",
    maxWorkers: 2,
    fileParallelism: true,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./packages/testing/src/summary-reporter.ts"],
  },
});
