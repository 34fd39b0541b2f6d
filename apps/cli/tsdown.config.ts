import { defineConfig } from "tsdown";

// The `inferline` package as published: the CLI with the workspace packages it uses bundled in
// (they are devDependencies, so tsdown inlines them), and npm packages as its dependencies (kept
// external; `onlyBundle: []` fails the build on any npm import missing from them). Besides the
// CLI's entry, the pool thread and the score chunk task are entries of their own: worker threads
// load them by URL from beside the chunk that starts them (see thread-pool-runner.ts and
// local-scorer.ts). The iris model and the database migrations ship in dist/ too.
export default defineConfig({
  entry: {
    main: "src/main.ts",
    "pool-thread": "../../packages/inference/src/pool-thread.ts",
    "chunk-task": "src/score/chunk-task.ts",
  },
  format: "esm",
  platform: "node",
  target: "node20",
  fixedExtension: true,
  dts: false,
  clean: true,
  deps: { onlyBundle: [] },
  copy: [
    { from: "../../models/iris/model.json", to: "dist/models/iris" },
    { from: "../../models/iris/iris.onnx", to: "dist/models/iris" },
    { from: "../../prisma/migrations", to: "dist" },
  ],
});
