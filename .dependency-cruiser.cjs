// dependency-cruiser: the import boundaries CI enforces (`pnpm check:boundaries`). Workspace packages
// resolve through their node_modules links to their real paths (packages/<name>/src/...), so a rule
// can tell an import of `@inferline/x` (dependency type "aliased-workspace" or "npm") from a relative
// path into another package (type "local").
/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "An import cycle: modules that need each other to load. Break it by moving what both need into a third module.",
      from: {},
      to: { circular: true },
    },
    {
      name: "api-no-inference",
      severity: "error",
      comment:
        "The API validates and enqueues; only workers and the CLI run models. It may not import @inferline/inference.",
      from: { path: "^apps/api/src/" },
      to: { path: "^packages/inference/" },
    },
    {
      name: "api-no-onnxruntime",
      severity: "error",
      comment: "The API never loads onnxruntime-node, directly or through any module it imports.",
      from: { path: "^apps/api/src/" },
      to: { path: "/node_modules/onnxruntime-(node|common)/", reachable: true },
    },
    {
      name: "no-relative-import-across-packages",
      severity: "error",
      comment:
        "A relative path into another package (e.g. ../../testing/src/x.ts) bypasses its exports. Import it by name (@inferline/x), declared as a workspace:* dependency.",
      from: { path: "^(apps|packages)/([^/]+)/" },
      // An import by package name that tsconfig.base.json's paths resolve to the package's source is aliased, not relative.
      to: {
        path: "^(apps|packages)/",
        pathNot: "^$1/$2/",
        dependencyTypes: ["local"],
        dependencyTypesNot: ["aliased-tsconfig-paths"],
      },
    },
    {
      name: "no-relative-import-into-packages",
      severity: "error",
      comment:
        "Scripts, benchmarks, models and the end-to-end suite import packages by name (@inferline/x), not by a relative path into their sources.",
      from: { pathNot: "^(apps|packages)/" },
      // As above: a name that tsconfig.base.json's paths resolve to a package's source (@inferline/client) is aliased, not relative.
      to: { path: "^(apps|packages)/", dependencyTypes: ["local"], dependencyTypesNot: ["aliased-tsconfig-paths"] },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "An import that resolves to no file.",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "(^|/)node_modules/" },
    exclude: { path: "^packages/db/src/generated/|^(apps|packages)/[^/]+/dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    skipAnalysisNotInRules: true,
  },
};
