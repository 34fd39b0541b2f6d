export { startApi, type RunningApi } from "./server.ts";
export { ApiEnv, loadApiEnv } from "./env.ts";
export { openApiDocument } from "./openapi.ts";
export { ApiMetrics } from "./metrics.ts";
export { LIST_WAITING } from "./routes/list-handler.ts";
