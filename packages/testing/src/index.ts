export { createTestDatabase, type TestDatabase } from "./database.ts";
export { uniquePrefix, deletePrefix, testRedisUrl } from "./redis.ts";
export { sleepUntil } from "./sleep-until.ts";
export { ApiClient, type HttpResponse } from "./http.ts";
export { irisInput, irisJob, IRIS_SAMPLES } from "./fixtures.ts";
export {
  createTestModelRepository,
  copyModelRepository,
  exitFixtureThreads,
  FIXTURE_ADAPTERS_MODULE,
  LOOKUP_TABLE,
  LOOKUP_TABLE_V2,
} from "./test-models.ts";
export { DATATYPE_SAMPLES, ECHO_WIDTH, echoModelName } from "./datatype-models.ts";
export { pngWithHeader, jpegWithHeader } from "./image-fixtures.ts";
export { createPgCluster, type PgCluster } from "./pg-cluster.ts";
export { startRedisServer, type RedisServer } from "./redis-server.ts";
export { startRedisCluster, type RedisCluster } from "./redis-cluster.ts";
export { freePort } from "./free-port.ts";
export { newJob, tensor } from "./job-rows.ts";
