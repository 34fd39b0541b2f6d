import { defineConfig } from "tsdown";

// @inferline/client as published: one ESM file and one bundled .d.ts. Its only dependency at run
// time is standardwebhooks; its types are self-contained (generated from the OpenAPI document).
export default defineConfig({
  entry: { index: "src/index.ts" },
  format: "esm",
  platform: "node",
  target: "node20",
  dts: true,
  clean: true,
  deps: { onlyBundle: [] },
});
