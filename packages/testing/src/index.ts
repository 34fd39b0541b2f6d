export { createTestDatabase, type TestDatabase } from "./database.ts";
export { uniquePrefix, deletePrefix, testRedisUrl } from "./redis.ts";
export { sleepUntil } from "./sleep-until.ts";
export { ApiClient, type HttpResponse } from "./http.ts";
export { irisInput, irisJob, IRIS_SAMPLES } from "./fixtures.ts";
export { createTestModelRepository, LOOKUP_TABLE } from "./test-models.ts";
