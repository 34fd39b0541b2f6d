export { startApi, type RunningApi } from "./server.ts";
export { ApiEnv, loadApiEnv } from "./env.ts";
export { openApiDocument } from "./openapi.ts";
